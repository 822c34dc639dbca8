/**
 * X.509 certificates (RFC 5280): parsing into a {@link Certificate} and the inspection model
 * ({@link CertificateInfo}) that the CLI, the installer and the portal show.
 *
 * ```asn1
 * Certificate ::= SEQUENCE { tbsCertificate TBSCertificate,
 *   signatureAlgorithm AlgorithmIdentifier, signatureValue BIT STRING }
 * TBSCertificate ::= SEQUENCE { version [0] EXPLICIT Version DEFAULT v1,
 *   serialNumber CertificateSerialNumber, signature AlgorithmIdentifier, issuer Name,
 *   validity Validity, subject Name, subjectPublicKeyInfo SubjectPublicKeyInfo,
 *   issuerUniqueID [1] IMPLICIT UniqueIdentifier OPTIONAL,
 *   subjectUniqueID [2] IMPLICIT UniqueIdentifier OPTIONAL,
 *   extensions [3] EXPLICIT Extensions OPTIONAL }
 * ```
 */
import { createHash } from 'node:crypto';
import * as der from './der.ts';
import { Tag, type Asn1 } from './der.ts';
import { PkiError, malformed } from './errors.ts';
import {
  ALG,
  ATTRIBUTE_NAMES,
  CURVES,
  EKU_NAMES,
  EXT,
  EXTENSION_NAMES,
  KEY_USAGE_BITS,
  PKIX,
  POLICY_NAMES,
  SIGNATURE_ALGS,
  type KeyUsageName,
} from './oids.ts';

/** One attribute of a relative distinguished name. */
export interface NameAttribute {
  readonly oid: string;
  /** OpenSSL short name (`CN`, `O`, …) or the dotted OID when unknown. */
  readonly type: string;
  readonly value: string;
  /** ASN.1 tag of the value (PrintableString, UTF8String, …). */
  readonly tag: number;
}

/** A distinguished name: RDNs in encoding order (most significant first). */
export interface Name {
  readonly der: Uint8Array;
  readonly rdns: readonly (readonly NameAttribute[])[];
}

export interface Extension {
  readonly oid: string;
  readonly critical: boolean;
  readonly value: Uint8Array;
}

/** A parsed certificate. Byte fields are views into the bytes it was parsed from. */
export interface Certificate {
  readonly der: Uint8Array;
  /** The TBSCertificate exactly as encoded: the bytes the issuer signed. */
  readonly tbs: Uint8Array;
  readonly version: 1 | 2 | 3;
  /** Serial number magnitude, big-endian, without the DER sign octet. */
  readonly serial: Uint8Array;
  readonly signatureAlgorithm: string;
  /** Parameters of the outer signatureAlgorithm (needed for RSASSA-PSS), raw DER or null. */
  readonly signatureParams: Uint8Array | null;
  readonly signature: Uint8Array;
  readonly issuer: Name;
  readonly subject: Name;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** SubjectPublicKeyInfo as encoded. */
  readonly spki: Uint8Array;
  readonly publicKeyAlgorithm: string;
  readonly extensions: readonly Extension[];
}

const PEM_CERT_TAG = Tag.SEQUENCE;

/**
 * Certificates parsed before, by their DER (as latin1 text). The same few certificates (a CA's
 * root and issuing certificates) come back in every provisioning document, GetCACert answer,
 * CertRep and store listing: a fleet of devices parsed them ten times a device, a fifth of the
 * device's allocation. A Certificate is a value (readonly throughout): one parsed from a private
 * copy of the bytes, so that no caller's buffer, later reused, shows through it, can be shared.
 * Only the strict DER parse below fills it; any parse may read it. Emptied when full.
 */
const PARSED = new Map<string, Certificate>();
const PARSED_MAX = 512;

function parsedKey(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/**
 * Parses one DER certificate. Throws {@link PkiError} `ERR_PKI_MALFORMED`/`ERR_PKI_TRUNCATED`
 * for anything that does not follow RFC 5280's structure. Signatures are not checked here.
 * The same bytes give the same (shared, immutable) value.
 */
export function parseCertificate(bytes: Uint8Array): Certificate {
  const key = parsedKey(bytes);
  let cert = PARSED.get(key);
  if (!cert) {
    cert = parseAsn1(der.decode(Uint8Array.from(bytes)));
    if (PARSED.size >= PARSED_MAX) PARSED.clear();
    PARSED.set(key, cert);
  }
  return cert;
}

/** Parses a certificate from an already decoded node (PKCS#7 and PKCS#12 bags use this). */
export function certificateFromAsn1(node: Asn1): Certificate {
  return PARSED.get(parsedKey(node.buf.subarray(node.start, node.end))) ?? parseAsn1(node);
}

function parseAsn1(node: Asn1): Certificate {
  const [tbsNode, sigAlg, sigValue] = der.seq(node, 'Certificate');
  const tbs = der.seq(tbsNode, 'TBSCertificate');
  let i = 0;
  let version: 1 | 2 | 3 = 1;
  if (tbs[0]?.tag === der.ctx(0, true)) {
    const v = der.smallInt(der.children(tbs[0])[0]!, 10);
    if (v > 2) throw malformed(`unknown certificate version ${v + 1}`);
    version = (v + 1) as 1 | 2 | 3;
    i = 1;
  }
  const serialNode = der.expect(tbs[i++], Tag.INTEGER, 'serialNumber');
  i++; // inner signature AlgorithmIdentifier; must equal the outer one, checked in chain.ts
  const issuer = parseName(tbs[i++], 'issuer');
  const validity = der.seq(tbs[i++], 'validity');
  const subject = parseName(tbs[i++], 'subject');
  const spkiNode = der.expect(tbs[i++], Tag.SEQUENCE, 'subjectPublicKeyInfo');
  const extensions: Extension[] = [];
  for (; i < tbs.length; i++) {
    const n = tbs[i]!;
    if (n.tag === der.ctx(3, true)) extensions.push(...parseExtensions(der.children(n)[0]));
  }
  const sigAlgParts = der.seq(sigAlg, 'signatureAlgorithm');
  const [alg] = der.seq(spkiNode, 'subjectPublicKeyInfo');
  const sig = der.bitString(der.expect(sigValue, Tag.BIT_STRING, 'signatureValue'));
  return {
    der: der.raw(node),
    tbs: der.raw(tbsNode!),
    version,
    serial: magnitude(der.value(serialNode)),
    signatureAlgorithm: der.oid(sigAlgParts[0]!),
    signatureParams:
      sigAlgParts[1] && sigAlgParts[1].tag !== Tag.NULL ? der.raw(sigAlgParts[1]) : null,
    signature: sig.bytes,
    issuer,
    subject,
    notBefore: der.time(validity[0]!),
    notAfter: der.time(der.expect(validity[1], validity[1]?.tag ?? 0, 'notAfter')),
    spki: der.raw(spkiNode),
    publicKeyAlgorithm: der.oid(der.seq(alg, 'algorithm')[0]!),
    extensions,
  };
}

/**
 * ```asn1
 * Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension
 * Extension ::= SEQUENCE { extnID OBJECT IDENTIFIER, critical BOOLEAN DEFAULT FALSE,
 *   extnValue OCTET STRING }
 * ```
 * Shared by certificates and the PKCS#9 extensionRequest of CSRs.
 */
export function parseExtensions(node: Asn1 | undefined): Extension[] {
  return der.seq(node, 'extensions').map((e) => {
    const parts = der.seq(e, 'extension');
    const critical = parts.length === 3 ? der.boolean(parts[1]!) : false;
    const val = der.expect(parts[parts.length - 1], Tag.OCTET_STRING, 'extnValue');
    return { oid: der.oid(parts[0]!), critical, value: der.value(val) };
  });
}

/** True when `bytes` start like a DER certificate (SEQUENCE of SEQUENCE, with a version or serial). */
export function looksLikeCertificate(bytes: Uint8Array): boolean {
  try {
    const top = der.readTlv(bytes, 0, bytes.length, 0);
    if (top.tag !== PEM_CERT_TAG) return false;
    const tbs = der.readTlv(bytes, top.valueStart, top.valueEnd, 1);
    if (tbs.tag !== Tag.SEQUENCE) return false;
    // [0] version? serialNumber INTEGER, then signature AlgorithmIdentifier = SEQUENCE { OID …}.
    // (A CSR also starts SEQUENCE { SEQUENCE { INTEGER …, but a Name follows its version.)
    let p = der.readTlv(bytes, tbs.valueStart, tbs.valueEnd, 2);
    if (p.tag === der.ctx(0, true)) p = der.readTlv(bytes, p.end, tbs.valueEnd, 2);
    if (p.tag !== Tag.INTEGER) return false;
    const alg = der.readTlv(bytes, p.end, tbs.valueEnd, 2);
    return (
      alg.tag === Tag.SEQUENCE &&
      der.readTlv(bytes, alg.valueStart, alg.valueEnd, 3).tag === Tag.OID
    );
  } catch {
    return false;
  }
}

function magnitude(v: Uint8Array): Uint8Array {
  let k = 0;
  while (k < v.length - 1 && v[k] === 0) k++;
  return v.subarray(k);
}

/** Parses a Name (RFC 5280 §4.1.2.4: SEQUENCE OF RelativeDistinguishedName). */
export function parseName(node: Asn1 | undefined, what: string): Name {
  const rdns = der.seq(node, what).map((set) => {
    der.expect(set, Tag.SET, `${what} RDN`);
    return der.children(set).map((atv) => {
      const [t, v] = der.seq(atv, `${what} attribute`);
      const oid = der.oid(t!);
      if (!v) throw malformed(`${what}: attribute without value`);
      let value: string;
      try {
        value = der.string(v);
      } catch {
        value = `#${Buffer.from(der.raw(v)).toString('hex')}`; // RFC 4514 §2.4 hex form
      }
      return { oid, type: ATTRIBUTE_NAMES[oid] ?? oid, value, tag: v.tag };
    });
  });
  return { der: der.raw(node!), rdns };
}

/**
 * RFC 4514 string of a name: RDNs in reverse order, `,` between RDNs and `+` inside one,
 * special characters escaped. Matches `openssl x509 -nameopt RFC2253,-esc_msb`.
 */
export function formatName(name: Name): string {
  return name.rdns
    .toReversed()
    .map((rdn) =>
      rdn
        .map(
          (a) =>
            `${a.type}=${a.value.startsWith('#') && a.type === a.oid ? a.value : escapeRdnValue(a.value)}`,
        )
        .join('+'),
    )
    .join(',');
}

function escapeRdnValue(v: string): string {
  let out = '';
  for (let i = 0; i < v.length; i++) {
    const c = v[i]!;
    const code = c.charCodeAt(0);
    if (',+"\\<>;'.includes(c)) out += `\\${c}`;
    else if ((c === '#' && i === 0) || (c === ' ' && (i === 0 || i === v.length - 1)))
      out += `\\${c}`;
    else if (code < 0x20 || code === 0x7f)
      out += `\\${code.toString(16).toUpperCase().padStart(2, '0')}`;
    else out += c;
  }
  return out;
}

/**
 * Name equality for chain building (RFC 5280 §7.1): byte-equal, or equal after case folding
 * and whitespace compression of string values, attribute by attribute.
 */
export function namesEqual(a: Name, b: Name): boolean {
  if (der.bytesEqual(a.der, b.der)) return true;
  if (a.rdns.length !== b.rdns.length) return false;
  return a.rdns.every((rdn, i) => {
    const other = b.rdns[i]!;
    if (rdn.length !== other.length) return false;
    return normalizedRdn(rdn) === normalizedRdn(other);
  });
}

/** An RDN in a canonical form for comparison: case-folded, whitespace-compressed, sorted. */
function normalizedRdn(rdn: readonly NameAttribute[]): string {
  return rdn
    .map((t) => `${t.oid}=${t.value.trim().replace(/\s+/g, ' ').toLowerCase()}`)
    .toSorted()
    .join('+');
}

/** The value of the first attribute of this type (e.g. `'2.5.4.3'` for the common name). */
export function nameAttribute(name: Name, oid: string): string | undefined {
  for (const rdn of name.rdns) for (const a of rdn) if (a.oid === oid) return a.value;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Inspection model

export interface PublicKeyInfo {
  /** `rsa`, `ec`, `ed25519`, `ed448`, `dsa`, `rsa-pss`, or the dotted OID when unknown. */
  readonly type: string;
  readonly bits?: number;
  readonly curve?: string;
}

export interface SubjectAltName {
  /** `dns`, `email`, `ip`, `uri`, `upn`, `guid`, `dirName`, `rid`, `otherName`, `x400Address`, `ediPartyName`. */
  readonly type: string;
  readonly value: string;
  /** For `otherName`: its type-id. */
  readonly oid?: string;
}

export interface ExtendedKeyUsage {
  readonly oid: string;
  readonly name: string;
}

export type CertificateRole = 'root' | 'intermediate' | 'end-entity';

/** Everything a careful person wants to see about a certificate before trusting it. */
export interface CertificateInfo {
  readonly subject: string;
  readonly subjectAttributes: readonly NameAttribute[];
  readonly issuer: string;
  readonly issuerAttributes: readonly NameAttribute[];
  readonly version: number;
  /** Lowercase hex, even length, as Windows shows it (no sign octet). */
  readonly serialNumber: string;
  readonly notBefore: string;
  readonly notAfter: string;
  /** SHA-1 of the DER certificate, lowercase hex: the Windows thumbprint and CSP node name. */
  readonly sha1: string;
  readonly sha256: string;
  readonly signatureAlgorithm: string;
  readonly publicKey: PublicKeyInfo;
  readonly keyUsage: readonly KeyUsageName[] | null;
  readonly extendedKeyUsage: readonly ExtendedKeyUsage[] | null;
  readonly subjectAltNames: readonly SubjectAltName[];
  readonly basicConstraints: { readonly ca: boolean; readonly pathLen: number | null } | null;
  readonly subjectKeyIdentifier: string | null;
  readonly authorityKeyIdentifier: string | null;
  readonly crlDistributionPoints: readonly string[];
  readonly authorityInfoAccess: {
    readonly ocsp: readonly string[];
    readonly caIssuers: readonly string[];
  };
  readonly certificatePolicies: readonly {
    readonly oid: string;
    readonly name?: string;
    readonly cps?: readonly string[];
  }[];
  /** Microsoft certificate template (name or OID), when present. */
  readonly template: string | null;
  readonly extensions: readonly {
    readonly oid: string;
    readonly name: string;
    readonly critical: boolean;
  }[];
  readonly isCA: boolean;
  /**
   * Self-issued with matching key identifiers, as OpenSSL's `X509_check_issued` judges a
   * certificate against itself. The signature itself is verified by chain validation.
   */
  readonly selfSigned: boolean;
  readonly role: CertificateRole;
}

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/** SHA-1 thumbprint, lowercase hex (the Windows thumbprint). */
export function sha1Thumbprint(cert: Certificate): string {
  return createHash('sha1').update(cert.der).digest('hex');
}

/** SHA-256 thumbprint, lowercase hex. */
export function sha256Thumbprint(cert: Certificate): string {
  return createHash('sha256').update(cert.der).digest('hex');
}

function extension(cert: Certificate, oid: string): Extension | undefined {
  return cert.extensions.find((e) => e.oid === oid);
}

/** basicConstraints (RFC 5280 §4.2.1.9), or null when absent. */
export function basicConstraints(
  cert: Certificate,
): { ca: boolean; pathLen: number | null } | null {
  const e = extension(cert, EXT.basicConstraints);
  if (!e) return null;
  const parts = der.seq(der.decode(e.value), 'basicConstraints');
  let ca = false;
  let pathLen: number | null = null;
  for (const p of parts) {
    if (p.tag === Tag.BOOLEAN) ca = der.boolean(p);
    else if (p.tag === Tag.INTEGER) pathLen = der.smallInt(p, 1 << 30);
  }
  return { ca, pathLen };
}

/** keyUsage bit names (RFC 5280 §4.2.1.3), or null when the extension is absent. */
export function keyUsage(cert: Certificate): KeyUsageName[] | null {
  const e = extension(cert, EXT.keyUsage);
  if (!e) return null;
  const { bytes } = der.bitString(der.decode(e.value));
  return KEY_USAGE_BITS.filter((_, bit) => ((bytes[bit >> 3] ?? 0) >> (7 - (bit & 7))) & 1);
}

/** extendedKeyUsage OIDs, or null when the extension is absent (meaning: any purpose). */
export function extendedKeyUsage(cert: Certificate): ExtendedKeyUsage[] | null {
  const e = extension(cert, EXT.extKeyUsage);
  if (!e) return null;
  return der.seq(der.decode(e.value), 'extKeyUsage').map((n) => {
    const oid = der.oid(n);
    return { oid, name: EKU_NAMES[oid] ?? oid };
  });
}

/** subjectKeyIdentifier as lowercase hex, or null. */
export function subjectKeyIdentifier(cert: Certificate): string | null {
  const e = extension(cert, EXT.subjectKeyIdentifier);
  return e
    ? hex(der.octets(der.expect(der.decode(e.value), Tag.OCTET_STRING, 'subjectKeyIdentifier')))
    : null;
}

/** The keyIdentifier of authorityKeyIdentifier (RFC 5280 §4.2.1.1) as lowercase hex, or null. */
export function authorityKeyIdentifier(cert: Certificate): string | null {
  const e = extension(cert, EXT.authorityKeyIdentifier);
  if (!e) return null;
  const id = der
    .seq(der.decode(e.value), 'authorityKeyIdentifier')
    .find((n) => n.tag === der.ctx(0, false));
  return id ? hex(der.value(id)) : null;
}

/** Formats one GeneralName (RFC 5280 §4.2.1.6). */
export function generalName(n: Asn1): SubjectAltName {
  const num = n.tag & 0x1f;
  switch (num) {
    case 0: {
      const [typeId, val] = der.children(n);
      const oid = der.oid(typeId!);
      const inner = der.children(val!)[0]!;
      if (oid === PKIX.upn) return { type: 'upn', value: der.string(inner), oid };
      if (oid === '1.3.6.1.4.1.311.25.1')
        return { type: 'guid', value: formatGuid(der.octets(inner)), oid };
      let value: string;
      try {
        value = der.string(inner);
      } catch {
        value = hex(der.raw(inner));
      }
      return { type: 'otherName', value, oid };
    }
    case 1:
      return { type: 'email', value: der.string(n) };
    case 2:
      return { type: 'dns', value: der.string(n) };
    case 3:
      return { type: 'x400Address', value: hex(der.value(n)) };
    case 4:
      return { type: 'dirName', value: formatName(parseName(der.children(n)[0], 'directoryName')) };
    case 5:
      return { type: 'ediPartyName', value: hex(der.value(n)) };
    case 6:
      return { type: 'uri', value: der.string(n) };
    case 7:
      return { type: 'ip', value: formatIp(der.value(n)) };
    case 8:
      return { type: 'rid', value: der.oidFromBytes(der.value(n)) };
    default:
      throw malformed(`unknown GeneralName tag [${num}]`);
  }
}

function formatIp(b: Uint8Array): string {
  if (b.length === 4) return Array.from(b).join('.');
  if (b.length === 16) {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
    return groups
      .join(':')
      .replace(/\b(?:0:){2,}0?\b|(^|:)0(:0)+(:|$)/, '::')
      .replace(/:{3,}/, '::');
  }
  return hex(b); // name constraints carry address+mask (8 or 32 bytes)
}

/** Microsoft GUIDs are little-endian in the first three groups. */
function formatGuid(b: Uint8Array): string {
  if (b.length !== 16) return hex(b);
  const h = (s: number, e: number, rev: boolean) => {
    const part = Array.from(b.subarray(s, e));
    return hex(Uint8Array.from(rev ? part.toReversed() : part));
  };
  return `${h(0, 4, true)}-${h(4, 6, true)}-${h(6, 8, true)}-${h(8, 10, false)}-${h(10, 16, false)}`;
}

/** subjectAltName entries in order. */
export function subjectAltNames(cert: Certificate): SubjectAltName[] {
  const e = extension(cert, EXT.subjectAltName);
  return e ? der.seq(der.decode(e.value), 'subjectAltName').map(generalName) : [];
}

function crlDistributionPoints(cert: Certificate): string[] {
  const e = extension(cert, EXT.crlDistributionPoints);
  if (!e) return [];
  const out: string[] = [];
  for (const dp of der.seq(der.decode(e.value), 'crlDistributionPoints')) {
    const dpName = der.children(dp).find((n) => n.tag === der.ctx(0, true));
    const full = dpName && der.children(dpName).find((n) => n.tag === der.ctx(0, true));
    if (full) for (const gn of der.children(full)) out.push(generalName(gn).value);
  }
  return out;
}

function authorityInfoAccess(cert: Certificate): { ocsp: string[]; caIssuers: string[] } {
  const e = extension(cert, EXT.authorityInfoAccess);
  const res = { ocsp: [] as string[], caIssuers: [] as string[] };
  if (!e) return res;
  for (const ad of der.seq(der.decode(e.value), 'authorityInfoAccess')) {
    const [method, loc] = der.seq(ad, 'accessDescription');
    const m = der.oid(method!);
    const v = generalName(loc!).value;
    if (m === PKIX.ocsp) res.ocsp.push(v);
    else if (m === PKIX.caIssuers) res.caIssuers.push(v);
  }
  return res;
}

function certificatePolicies(cert: Certificate): CertificateInfo['certificatePolicies'] {
  const e = extension(cert, EXT.certificatePolicies);
  if (!e) return [];
  return der.seq(der.decode(e.value), 'certificatePolicies').map((pi) => {
    const [id, quals] = der.seq(pi, 'policyInformation');
    const oid = der.oid(id!);
    const cps: string[] = [];
    for (const q of quals ? der.seq(quals, 'policyQualifiers') : []) {
      const [qid, qv] = der.seq(q, 'policyQualifierInfo');
      if (der.oid(qid!) === PKIX.cps && qv) cps.push(der.string(qv));
    }
    const name = POLICY_NAMES[oid];
    return { oid, ...(name ? { name } : {}), ...(cps.length ? { cps } : {}) };
  });
}

/**
 * The Microsoft certificate template a certificate was issued from: the name of the v1
 * extension (1.3.6.1.4.1.311.20.2, a BMPString such as `User`) and the OID of the v2 extension
 * (1.3.6.1.4.1.311.21.7, `CertificateTemplate ::= SEQUENCE { templateID OBJECT IDENTIFIER,
 * templateMajorVersion INTEGER OPTIONAL, templateMinorVersion INTEGER OPTIONAL }`), each when
 * present; null when neither is.
 */
export function certificateTemplate(cert: Certificate): { name?: string; oid?: string } | null {
  const v1 = extension(cert, EXT.msCertificateTemplateName);
  const v2 = extension(cert, EXT.msCertificateTemplate);
  if (!v1 && !v2) return null;
  return {
    ...(v1 ? { name: der.string(der.decode(v1.value)) } : {}),
    ...(v2 ? { oid: der.oid(der.seq(der.decode(v2.value), 'certificateTemplate')[0]!) } : {}),
  };
}

function template(cert: Certificate): string | null {
  const t = certificateTemplate(cert);
  return t ? (t.name ?? t.oid ?? null) : null;
}

/** Key type and size from a SubjectPublicKeyInfo (RFC 5280 §4.1.2.7, RFC 5480, RFC 8410). */
export function publicKeyInfo(spki: Uint8Array): PublicKeyInfo {
  const [alg, key] = der.seq(der.decode(spki), 'subjectPublicKeyInfo');
  const [algOid, params] = der.seq(alg, 'algorithm');
  const oid = der.oid(algOid!);
  const bits = der.bitString(der.expect(key, Tag.BIT_STRING, 'subjectPublicKey')).bytes;
  switch (oid) {
    case ALG.rsaEncryption:
    case ALG.rsassaPss: {
      const [mod] = der.seq(der.decode(bits), 'RSAPublicKey');
      return {
        type: oid === ALG.rsaEncryption ? 'rsa' : 'rsa-pss',
        bits: bitLength(der.value(der.expect(mod, Tag.INTEGER, 'modulus'))),
      };
    }
    case ALG.ecPublicKey: {
      if (params?.tag === Tag.OID) {
        const c = CURVES[der.oid(params)];
        if (c) return { type: 'ec', curve: c.name, bits: c.bits };
        return { type: 'ec', curve: der.oid(params) };
      }
      return { type: 'ec', curve: 'explicit', bits: ((bits.length - 1) / 2) * 8 };
    }
    case ALG.ed25519:
      return { type: 'ed25519', curve: 'Ed25519', bits: 256 };
    case ALG.ed448:
      return { type: 'ed448', curve: 'Ed448', bits: 456 };
    case ALG.dsa: {
      const p = params ? der.seq(params, 'Dss-Parms')[0] : undefined;
      return p ? { type: 'dsa', bits: bitLength(der.value(p)) } : { type: 'dsa' };
    }
    default:
      return { type: oid };
  }
}

function bitLength(mag: Uint8Array): number {
  let i = 0;
  while (i < mag.length && mag[i] === 0) i++;
  if (i === mag.length) return 0;
  return (mag.length - i - 1) * 8 + (32 - Math.clz32(mag[i]!));
}

/**
 * Self-issued and, where both key identifiers are present, SKI = AKI (OpenSSL's test of a
 * certificate against itself, without the signature check).
 */
export function isSelfIssued(cert: Certificate): boolean {
  if (!namesEqual(cert.subject, cert.issuer)) return false;
  const aki = authorityKeyIdentifier(cert);
  const ski = subjectKeyIdentifier(cert);
  return !(aki && ski && aki !== ski);
}

/** True for a CA certificate: basicConstraints cA, or a v1 self-issued certificate (legacy roots). */
export function isCA(cert: Certificate): boolean {
  const bc = basicConstraints(cert);
  return bc ? bc.ca : cert.version === 1 && isSelfIssued(cert);
}

/** Root CA, intermediate CA or end entity, as the installer files certificates (design.md §1). */
export function certificateRole(cert: Certificate): CertificateRole {
  if (!isCA(cert)) return 'end-entity';
  return isSelfIssued(cert) ? 'root' : 'intermediate';
}

/** Builds the full inspection model of a certificate. */
export function inspectCertificate(cert: Certificate): CertificateInfo {
  const bc = basicConstraints(cert);
  const selfSigned = isSelfIssued(cert);
  const ca = bc ? bc.ca : cert.version === 1 && selfSigned;
  return {
    subject: formatName(cert.subject),
    subjectAttributes: cert.subject.rdns.flat(),
    issuer: formatName(cert.issuer),
    issuerAttributes: cert.issuer.rdns.flat(),
    version: cert.version,
    serialNumber: hex(cert.serial),
    notBefore: cert.notBefore.toISOString(),
    notAfter: cert.notAfter.toISOString(),
    sha1: sha1Thumbprint(cert),
    sha256: sha256Thumbprint(cert),
    signatureAlgorithm: SIGNATURE_ALGS[cert.signatureAlgorithm]?.name ?? cert.signatureAlgorithm,
    publicKey: publicKeyInfo(cert.spki),
    keyUsage: keyUsage(cert),
    extendedKeyUsage: extendedKeyUsage(cert),
    subjectAltNames: subjectAltNames(cert),
    basicConstraints: bc,
    subjectKeyIdentifier: subjectKeyIdentifier(cert),
    authorityKeyIdentifier: authorityKeyIdentifier(cert),
    crlDistributionPoints: crlDistributionPoints(cert),
    authorityInfoAccess: authorityInfoAccess(cert),
    certificatePolicies: certificatePolicies(cert),
    template: template(cert),
    extensions: cert.extensions.map((e) => ({
      oid: e.oid,
      name: EXTENSION_NAMES[e.oid] ?? e.oid,
      critical: e.critical,
    })),
    isCA: ca,
    selfSigned,
    role: !ca ? 'end-entity' : selfSigned ? 'root' : 'intermediate',
  };
}

/** Re-throws any non-PkiError from a parse step as ERR_PKI_MALFORMED (defensive boundary). */
export function guardParse<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof PkiError) throw e;
    throw malformed(`${what}: ${(e as Error).message}`);
  }
}
