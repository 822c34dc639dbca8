/**
 * Subject strings → DER `Name` (RFC 5280 §4.1.2.4), in the two syntaxes certpost meets:
 *
 * - {@link parseRfc4514}: RFC 4514 / RFC 2253 strings as `openssl x509 -nameopt RFC2253` and
 *   {@link formatName} print them. The **last** RDN of the string is the **first** RDN of the
 *   encoded Name (`CN=dev,O=Contoso,C=US` encodes `C=US` first).
 * - {@link parseX500}: the Windows `CertStrToName` / SCEP-profile style (`CN=device,OU=IT,O=Contoso`),
 *   where the **first** RDN of the string is the **first** RDN of the encoded Name, as Windows
 *   `SubjectName` and Intune profiles write it.
 *
 * Both accept the same lexical superset: `,` or `;` between RDNs, `+` between the attributes
 * of a multi-valued RDN, backslash escapes (`\,` and `\2C`, hex escapes forming UTF-8),
 * double-quoted values (`O="Contoso, Inc."`), `#hex` values (the raw DER of the value,
 * RFC 4514 §2.4), unescaped whitespace around types and values ignored. Attribute types are
 * OpenSSL short names (`ATTRIBUTE_OIDS`, case-insensitive), the Windows aliases `E`, `S`, `T`,
 * `G`, `I`, `STREET`, or dotted OIDs (optionally prefixed `OID.`).
 *
 * Value string types follow OpenSSL's `req -subj` (string_mask utf8only) and RFC 5280
 * Appendix A: `C`, `serialNumber`, `dnQualifier` as PrintableString; `emailAddress`, `DC` as
 * IA5String; everything else as UTF8String (RFC 5280 §4.1.2.4 "MUST use UTF8String").
 *
 * ```asn1
 * Name ::= CHOICE { rdnSequence RDNSequence }
 * RDNSequence ::= SEQUENCE OF RelativeDistinguishedName
 * RelativeDistinguishedName ::= SET SIZE (1..MAX) OF AttributeTypeAndValue
 * AttributeTypeAndValue ::= SEQUENCE { type AttributeType, value AttributeValue }
 * ```
 */
import { decode, enc } from '../pki/der.ts';
import { PkiError } from '../pki/errors.ts';
import { ATTRIBUTE_OIDS } from '../pki/oids.ts';
import { formatName, parseName } from '../pki/x509.ts';

/** One attribute to encode: `type` is a short name or a dotted OID. */
export interface SubjectAttributeInput {
  readonly type: string;
  readonly value: string;
}

/** Windows `CertStrToName` X.500 keys that differ from OpenSSL's short names. */
const WINDOWS_ALIASES: Readonly<Record<string, string>> = {
  e: '1.2.840.113549.1.9.1',
  email: '1.2.840.113549.1.9.1',
  s: '2.5.4.8',
  t: '2.5.4.12',
  g: '2.5.4.42',
  givenname: '2.5.4.42',
  i: '2.5.4.43',
  street: '2.5.4.9',
  surname: '2.5.4.4',
  commonname: '2.5.4.3',
  organizationname: '2.5.4.10',
  organizationalunitname: '2.5.4.11',
  countryname: '2.5.4.6',
  localityname: '2.5.4.7',
  stateorprovincename: '2.5.4.8',
  domaincomponent: '0.9.2342.19200300.100.1.25',
};

const PRINTABLE_TYPES = new Set(['2.5.4.6', '2.5.4.5', '2.5.4.46']);
const IA5_TYPES = new Set(['1.2.840.113549.1.9.1', '0.9.2342.19200300.100.1.25']);

function invalid(detail: string): PkiError {
  return new PkiError('ERR_PKI_INVALID_ARGUMENT', detail);
}

/** Resolves an attribute type (short name, Windows alias or dotted OID) to a dotted OID. */
export function attributeOid(type: string): string {
  const t = type.trim();
  const dotted = /^oid\./i.test(t) ? t.slice(4) : t;
  if (/^\d+(\.\d+)+$/.test(dotted)) return dotted;
  const key = t.toLowerCase();
  const oid = ATTRIBUTE_OIDS[key] ?? WINDOWS_ALIASES[key];
  if (!oid) throw invalid(`unknown attribute type "${type}" in a subject name`);
  return oid;
}

/** PrintableString alphabet (X.680 §41.4). */
const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

function encodeValue(oid: string, value: string): Uint8Array {
  if (PRINTABLE_TYPES.has(oid)) {
    if (!PRINTABLE.test(value))
      throw invalid(`"${value}" is not a PrintableString (required for ${oid})`);
    if (oid === '2.5.4.6' && value.length !== 2)
      throw invalid(`country "${value}" must be a two-letter ISO 3166 code`);
    return enc.printable(value);
  }
  if (IA5_TYPES.has(oid)) {
    for (let k = 0; k < value.length; k++)
      if (value.charCodeAt(k) > 0x7f) throw invalid(`"${value}" is not an IA5String (ASCII)`);
    return enc.ia5(value);
  }
  return enc.utf8(value);
}

/** One AttributeTypeAndValue; `raw` is a pre-encoded value (from `#hex`). */
interface Atv {
  readonly oid: string;
  readonly value: string;
  readonly raw?: Uint8Array;
}

function encodeAtv(a: Atv): Uint8Array {
  return enc.seq(enc.oid(a.oid), a.raw ?? encodeValue(a.oid, a.value));
}

/**
 * Encodes RDNs given in **encoding order** (first element = first RDN of the Name).
 * Each inner array is one RDN; more than one attribute makes a multi-valued RDN (a DER SET,
 * sorted by the encoder).
 */
export function encodeName(rdns: readonly (readonly SubjectAttributeInput[])[]): Uint8Array {
  return enc.seq(
    ...rdns.map((rdn) => {
      if (rdn.length === 0) throw invalid('empty RDN');
      return enc.setOf(...rdn.map((a) => encodeAtv({ oid: attributeOid(a.type), value: a.value })));
    }),
  );
}

/**
 * Parses an RFC 4514 string (last RDN in the string = first RDN encoded) into a DER Name.
 * The empty string is the empty Name.
 * @example parseRfc4514('CN=device 1,OU=IT,O=Contoso\\, Inc.,C=US') // C=US encoded first
 */
export function parseRfc4514(s: string): Uint8Array {
  return encodeRdns(tokenize(s).toReversed());
}

/**
 * The canonical RFC 4514 form of a name string (what `formatName` gives for the encoded name):
 * `cn = device-42, O=Contoso` → `CN=device-42,O=Contoso`. Names stored for comparison with
 * `formatName(cert.subject)` (challenge subjects, subject filters) go through this.
 */
export function canonicalRfc4514(s: string): string {
  return formatName(parseName(decode(parseRfc4514(s)), 'name'));
}

/**
 * The canonical RFC 4514 form of a Windows/X.500 string ({@link parseX500} order): what
 * `formatName` gives for the name a Windows SCEP client encodes from its SubjectName.
 * @example canonicalFromX500('CN=device,O=Contoso') // 'O=Contoso,CN=device'
 */
export function canonicalFromX500(s: string): string {
  return formatName(parseName(decode(parseX500(s)), 'name'));
}

/**
 * Parses a Windows/X.500 `CertStrToName` string (first RDN in the string = first RDN encoded)
 * into a DER Name. The empty string is the empty Name.
 * @example parseX500('CN=device,OU=IT,O="Contoso, Inc."') // CN encoded first
 */
export function parseX500(s: string): Uint8Array {
  return encodeRdns(tokenize(s));
}

function encodeRdns(rdns: readonly (readonly Atv[])[]): Uint8Array {
  return enc.seq(...rdns.map((rdn) => enc.setOf(...rdn.map(encodeAtv))));
}

const hexDigit = (c: string | undefined) => c !== undefined && /^[0-9a-fA-F]$/.test(c);

/** Splits a subject string into RDNs (string order), unescaping values. */
function tokenize(s: string): Atv[][] {
  const rdns: Atv[][] = [];
  if (s.trim() === '') return rdns;
  let rdn: Atv[] = [];
  let i = 0;
  const n = s.length;
  const skipSpaces = () => {
    while (i < n && /\s/.test(s[i]!)) i++;
  };
  for (;;) {
    skipSpaces();
    const typeStart = i;
    while (i < n && s[i] !== '=') {
      if (',;+'.includes(s[i]!)) throw invalid(`missing "=" in subject "${s}"`);
      i++;
    }
    if (i >= n) throw invalid(`missing "=" in subject "${s}"`);
    const type = s.slice(typeStart, i).trim();
    if (!type) throw invalid(`empty attribute type in subject "${s}"`);
    const oid = attributeOid(type);
    i++; // '='
    skipSpaces();
    let atv: Atv;
    if (s[i] === '#') {
      const m = /^#((?:[0-9a-fA-F]{2})+)/.exec(s.slice(i));
      if (!m) throw invalid(`bad #hex value in subject "${s}"`);
      i += m[0].length;
      const raw = Uint8Array.from(Buffer.from(m[1]!, 'hex'));
      try {
        decode(raw); // exactly one complete TLV
      } catch {
        throw invalid(`#hex value is not one DER value in subject "${s}"`);
      }
      atv = { oid, value: m[0], raw };
    } else if (s[i] === '"') {
      i++;
      const bytes: number[] = [];
      for (;;) {
        if (i >= n) throw invalid(`unterminated quoted value in subject "${s}"`);
        const c = s[i]!;
        if (c === '"') {
          // Windows doubles a quote inside a quoted value ("" → ").
          if (s[i + 1] === '"') {
            bytes.push(0x22);
            i += 2;
            continue;
          }
          i++;
          break;
        }
        if (c === '\\') i = unescape(s, i, bytes);
        else {
          pushUtf8(bytes, s, i);
          i += c.length === 1 && isHighSurrogate(c) ? 2 : 1;
        }
      }
      atv = { oid, value: decodeUtf8(bytes, s) };
    } else {
      const bytes: number[] = [];
      let keep = 0; // bytes that must survive trailing-space trimming (escaped ones)
      while (i < n && !',;+'.includes(s[i]!)) {
        if (s[i] === '\\') {
          i = unescape(s, i, bytes);
          keep = bytes.length;
        } else {
          pushUtf8(bytes, s, i);
          i += isHighSurrogate(s[i]!) ? 2 : 1;
        }
      }
      while (bytes.length > keep && (bytes.at(-1) === 0x20 || bytes.at(-1) === 0x09)) bytes.pop();
      atv = { oid, value: decodeUtf8(bytes, s) };
    }
    rdn.push(atv);
    skipSpaces();
    if (i >= n) {
      rdns.push(rdn);
      return rdns;
    }
    const sep = s[i]!;
    i++;
    if (sep === '+') continue;
    if (sep === ',' || sep === ';') {
      rdns.push(rdn);
      rdn = [];
      continue;
    }
    throw invalid(`unexpected "${sep}" after a quoted value in subject "${s}"`);
  }
}

function isHighSurrogate(c: string): boolean {
  const code = c.charCodeAt(0);
  return code >= 0xd800 && code <= 0xdbff;
}

function pushUtf8(out: number[], s: string, i: number): void {
  const cp = s.codePointAt(i)!;
  out.push(...Buffer.from(String.fromCodePoint(cp), 'utf8'));
}

/** Handles `\X` (special character) or `\HH` (one UTF-8 byte) at `i`; returns the next index. */
function unescape(s: string, i: number, out: number[]): number {
  const a = s[i + 1];
  if (a === undefined) throw invalid(`dangling "\\" in subject "${s}"`);
  if (hexDigit(a) && hexDigit(s[i + 2])) {
    out.push(parseInt(s.slice(i + 1, i + 3), 16));
    return i + 3;
  }
  pushUtf8(out, s, i + 1);
  return i + 1 + (isHighSurrogate(a) ? 2 : 1);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeUtf8(bytes: number[], s: string): string {
  try {
    return utf8.decode(Uint8Array.from(bytes));
  } catch {
    throw invalid(`hex escapes do not form UTF-8 in subject "${s}"`);
  }
}
