/**
 * PKCS#12 / PFX files (RFC 7292): reading certificates and private keys out of them, and
 * writing them for devices.
 *
 * Reading ({@link parsePkcs12}) accepts what real producers write: OpenSSL 3 (PBES2 AES-256,
 * HMAC-SHA256 MAC) and `-legacy` (RC2-40 certificates, 3DES key, SHA-1 MAC), Windows
 * (3DES everywhere), NSS (BER: indefinite lengths, constructed OCTET STRINGs), GnuTLS, Java
 * keytool and python-cryptography; unencrypted bags and files without a MAC; nested
 * safeContentsBags; keyBags; PBMAC1 integrity (RFC 9579). Contract:
 *
 * - Key derivation is the only work a file can make expensive, so one read may spend at most
 *   `maxIterations` on it in total ({@link DEFAULT_MAX_ITERATIONS}): each derivation costs its
 *   iteration count times the hash blocks it produces (`pbeWork`, `appendixBWork`), summed over
 *   the MAC, every encrypted part and every password form tried. The structure is read
 *   completely and what it demands without decryption is checked first, before any derivation
 *   (`ERR_PKI_LIMIT`); every derivation is charged before it starts, so parts hidden inside
 *   encrypted content are bounded too. A file may have at most {@link MAX_ENCRYPTED_PARTS}
 *   encrypted parts.
 * - Passwords: RFC 7292 Appendix B.1 makes the MAC and PKCS#12-PBE password a BMPString with a
 *   two-byte NUL terminator, and PBES2 takes the UTF-8 bytes. Producers disagree on the corner
 *   cases, so when the first form fails we also try: for an empty (or absent) password, the
 *   zero-length BMPString (OpenSSL's "NULL password"); for a non-ASCII password, the UTF-8 bytes
 *   widened byte by byte (OpenSSL 1.0's `asc2uni`).
 * - Failures: no MAC form verifies and nothing decrypts → `ERR_PKI_BAD_PASSWORD` (or
 *   `ERR_PKI_PASSWORD_REQUIRED` when no password was given); the MAC fails but the password
 *   decrypts the encrypted content to well-formed data → `ERR_PKI_MAC_MISMATCH` (the file was
 *   modified). Decryption failures never say which check failed.
 * - Key derivations for the MAC and for every encrypted part start together: PBKDF2 on the
 *   thread pool while the Appendix B KDF of the MAC runs on this thread, so an import costs
 *   about its slowest derivation (`bench/pkcs12.ts`, design.md §5). The Appendix B KDF has no
 *   native API and holds this thread for its run: about 0.26 µs per SHA-256 iteration here,
 *   so 0.5 ms for OpenSSL's 2048 and 160 ms for GnuTLS's and NSS's 600,000.
 *
 * Writing ({@link encodePkcs12}) produces DER in OpenSSL's layout: certificates in an
 * EncryptedData, the key in a pkcs8ShroudedKeyBag, friendlyName and localKeyId (SHA-1 of the
 * key's certificate) on both. Profiles: `modern` = PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC),
 * HMAC-SHA256 MAC, 2048 iterations (OpenSSL 3's defaults); `compat` =
 * pbeWithSHAAnd3-KeyTripleDES-CBC and HMAC-SHA1, 2000 iterations, for importers that predate
 * PBES2 in PKCS#12 (older Windows, Apple and Android key stores).
 *
 * ```asn1
 * PFX ::= SEQUENCE { version INTEGER {v3(3)}, authSafe ContentInfo, macData MacData OPTIONAL }
 * MacData ::= SEQUENCE { mac DigestInfo, macSalt OCTET STRING, iterations INTEGER DEFAULT 1 }
 * AuthenticatedSafe ::= SEQUENCE OF ContentInfo   -- Data, EncryptedData or EnvelopedData
 * SafeContents ::= SEQUENCE OF SafeBag
 * SafeBag ::= SEQUENCE { bagId OBJECT IDENTIFIER, bagValue [0] EXPLICIT ANY,
 *   bagAttributes SET OF PKCS12Attribute OPTIONAL }
 * CertBag ::= SEQUENCE { certId OBJECT IDENTIFIER, certValue [0] EXPLICIT ANY }
 * ```
 * (RFC 7292 §4, §4.2, Appendix D; EncryptedData is RFC 5652 §8.)
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import * as der from './der.ts';
import { Tag, enc, type Asn1 } from './der.ts';
import { PkiError, isPkiError, malformed } from './errors.ts';
import {
  describePrivateKey,
  keyMatchesCertificate,
  parsePrivateKeyDer,
  type PrivateKey,
} from './keys.ts';
import { ALG, CMS, PKCS9 } from './oids.ts';
import {
  appendixBWork,
  DEFAULT_MAX_ITERATIONS,
  DIGEST_OIDS,
  HASH_SIZES,
  KDF_ID,
  PBE_OIDS,
  decryptFailed,
  encodePbe,
  iterationCount,
  parsePbe,
  pbeDecrypt,
  pbeEncrypt,
  pbeSha13DesParams,
  pbes2Aes256Params,
  passwordBytes,
  pbkdf2Async,
  pbkdf2Work,
  pbeWork,
  pkcs12Kdf,
  readPbkdf2,
  type HashName,
  type PasswordBytes,
  type PbeParams,
  type Pbkdf2Params,
} from './pkcs12-kdf.ts';
import { MAX_BUNDLE_CERTIFICATES } from './pkcs7.ts';
import { certificateFromAsn1, publicKeyInfo, type Certificate } from './x509.ts';

/** Bag types of RFC 7292 §4.2. */
export const PKCS12_BAGS = {
  keyBag: '1.2.840.113549.1.12.10.1.1',
  pkcs8ShroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  certBag: '1.2.840.113549.1.12.10.1.3',
  crlBag: '1.2.840.113549.1.12.10.1.4',
  secretBag: '1.2.840.113549.1.12.10.1.5',
  safeContentsBag: '1.2.840.113549.1.12.10.1.6',
} as const;

const ENVELOPED_DATA = CMS.envelopedData;
const SIGNED_DATA = CMS.signedData;

export { DEFAULT_MAX_ITERATIONS };

/**
 * Highest iteration count {@link encodePkcs12} writes: what it writes must read back within
 * {@link DEFAULT_MAX_ITERATIONS} (the `compat` profile spends 7 units per iteration).
 */
export const MAX_WRITE_ITERATIONS = 350_000;

/**
 * Most encrypted parts (EncryptedData plus shrouded key bags) a file may have; no producer
 * writes more than a handful, and each is a separate derivation and decryption.
 */
export const MAX_ENCRYPTED_PARTS = 32;

/**
 * The key-derivation work of one read: every derivation is charged before it starts, and one
 * that would take the total past the budget is refused (`ERR_PKI_LIMIT`) instead of run.
 */
class Work {
  spent = 0;
  exhausted = false;
  readonly max: number;
  constructor(max: number) {
    this.max = max;
  }

  charge(units: number, what: string): void {
    if (this.spent + units > this.max) {
      this.exhausted = true;
      throw new PkiError(
        'ERR_PKI_LIMIT',
        `${what}: key derivation beyond ${this.max} iterations in total`,
      );
    }
    this.spent += units;
  }
}

export interface Pkcs12Certificate {
  certificate: Certificate;
  friendlyName?: string;
  /** Lowercase hex. */
  localKeyId?: string;
}

export interface Pkcs12Contents {
  certificates: Pkcs12Certificate[];
  /** With friendlyName/localKeyId from the bag attributes. */
  keys: PrivateKey[];
  /** MAC algorithm (`hmac-sha256`, `hmac-sha1`, …, `pbmac1`, or `none`) and its iteration count. */
  integrity: { mac: string; iterations: number };
  /** Encryption schemes seen, in order, e.g. `pbes2-aes-256-cbc-pbkdf2-hmac-sha256`, `pbe-sha1-3des`, `none`. */
  encryption: string[];
}

interface BagAttributes {
  friendlyName?: string;
  localKeyId?: string;
}

type Bag =
  | { readonly kind: 'cert'; readonly cert: Certificate; readonly attrs: BagAttributes }
  | { readonly kind: 'key'; readonly pkcs8: Uint8Array; readonly attrs: BagAttributes }
  | {
      readonly kind: 'shrouded';
      readonly params: PbeParams;
      readonly ciphertext: Uint8Array;
      readonly attrs: BagAttributes;
    };

type AuthSafeItem =
  | { readonly kind: 'data'; readonly bags: readonly Bag[] }
  | { readonly kind: 'encrypted'; readonly params: PbeParams; readonly ciphertext: Uint8Array };

type MacInfo =
  | {
      readonly kind: 'pkcs12';
      readonly hash: HashName;
      readonly digest: Uint8Array;
      readonly salt: Uint8Array;
      readonly iterations: number;
    }
  | {
      readonly kind: 'pbmac1';
      readonly kdf: Pbkdf2Params & { readonly keyLength: number };
      readonly hmac: HashName;
      readonly digest: Uint8Array;
    };

interface Pfx {
  /** The bytes the MAC covers: the contents of the authSafe Data. */
  readonly authSafe: Uint8Array;
  readonly items: readonly AuthSafeItem[];
  readonly mac: MacInfo | undefined;
}

/**
 * Cheap structural sniff: a SEQUENCE starting with INTEGER 3 and a ContentInfo whose type is
 * Data or SignedData. No decryption, no full parse.
 */
export function looksLikePkcs12(bytes: Uint8Array): boolean {
  try {
    const top = der.readTlv(bytes, 0, bytes.length, 0);
    if (top.tag !== Tag.SEQUENCE) return false;
    const version = der.readTlv(bytes, top.valueStart, top.valueEnd, 1);
    if (
      version.tag !== Tag.INTEGER ||
      version.valueEnd - version.valueStart !== 1 ||
      bytes[version.valueStart] !== 3
    ) {
      return false;
    }
    const ci = der.readTlv(bytes, version.end, top.valueEnd, 1);
    if (ci.tag !== Tag.SEQUENCE) return false;
    const type = der.readTlv(bytes, ci.valueStart, ci.valueEnd, 2);
    if (type.tag !== Tag.OID) return false;
    const o = der.oidFromBytes(der.value(type));
    return o === CMS.data || o === SIGNED_DATA;
  } catch {
    return false;
  }
}

/**
 * Reads a PFX: its certificates and private keys with their bag attributes, and how it was
 * protected.
 * @param password `undefined` when none was given; the empty password is tried then, and
 *   failing that the error is `ERR_PKI_PASSWORD_REQUIRED`
 * @param options.maxIterations the key-derivation work the read may do in total, in iterations
 *   (see the file header); more is refused (`ERR_PKI_LIMIT`)
 */
export async function parsePkcs12(
  bytes: Uint8Array,
  password: string | undefined,
  options: { maxIterations?: number } = {},
): Promise<Pkcs12Contents> {
  const max = options.maxIterations ?? DEFAULT_MAX_ITERATIONS;
  if (!Number.isInteger(max) || max < 1)
    throw new PkiError('ERR_PKI_INVALID_ARGUMENT', 'maxIterations');
  const pfx = guard(() => readPfx(bytes));
  const demand = pfxWork(pfx);
  if (demand > max)
    throw new PkiError(
      'ERR_PKI_LIMIT',
      `the file demands ${demand} iterations of key derivation (limit ${max})`,
    );
  const work = new Work(max);
  const forms = passwordForms(password);
  const fail = (code: 'ERR_PKI_BAD_PASSWORD' | 'ERR_PKI_MAC_MISMATCH'): PkiError =>
    password === undefined && code === 'ERR_PKI_BAD_PASSWORD'
      ? new PkiError('ERR_PKI_PASSWORD_REQUIRED', 'the file is protected by a password')
      : new PkiError(code);

  // Start decrypting with the likeliest password form while the MAC key is derived.
  const firstProgress: Progress = { decrypted: 0 };
  const first = settle(openItems(pfx, forms[0]!, work, firstProgress));
  const integrity = describeMac(pfx.mac);
  let opened: Settled<Opened> | undefined;
  let macForm: PasswordBytes | undefined;
  if (pfx.mac) {
    for (const form of forms) {
      if (await verifyMac(pfx.mac, pfx.authSafe, form, work)) {
        macForm = form;
        break;
      }
    }
    if (!macForm) {
      // Wrong password, or a modified file: it is the latter if the password decrypts. When
      // the budget runs out before that is known, the answer stays "wrong password".
      for (const form of forms) {
        const progress = form === forms[0] ? firstProgress : { decrypted: 0 };
        const r =
          form === forms[0] ? await first : await settle(openItems(pfx, form, work, progress));
        if (progress.decrypted > 0) throw fail('ERR_PKI_MAC_MISMATCH');
        if (work.exhausted) break;
        if (!r.ok && !isPkiError(r.error, 'ERR_PKI_BAD_PASSWORD')) throw r.error;
      }
      throw fail('ERR_PKI_BAD_PASSWORD');
    }
  }
  // Decrypt with the form that verified the MAC first, then the others.
  const order = macForm ? [macForm, ...forms.filter((f) => f !== macForm)] : forms;
  for (const form of order) {
    opened = form === forms[0] ? await first : await settle(openItems(pfx, form, work));
    if (opened.ok || !isPkiError(opened.error, 'ERR_PKI_BAD_PASSWORD')) break;
  }
  if (!opened) throw fail('ERR_PKI_BAD_PASSWORD');
  if (!opened.ok) {
    if (isPkiError(opened.error, 'ERR_PKI_BAD_PASSWORD')) throw fail('ERR_PKI_BAD_PASSWORD');
    throw opened.error;
  }
  return { ...opened.value, integrity };
}

type Settled<T> = { ok: true; value: T } | { ok: false; error: PkiError };

/** Settles a promise into a value, so a speculative start can never be an unhandled rejection. */
function settle<T>(p: Promise<T>): Promise<Settled<T>> {
  return p.then(
    (value) => ({ ok: true as const, value }),
    (e: unknown) => ({ ok: false as const, error: asPkiError(e) }),
  );
}

function asPkiError(e: unknown): PkiError {
  if (e instanceof PkiError) return e;
  return malformed(`PKCS#12: ${(e as Error).message}`);
}

/** Runs a synchronous parse step, re-throwing anything that is not a PkiError as malformed. */
function guard<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw asPkiError(e);
  }
}

/** The password encodings to try, likeliest first (see the file header). */
function passwordForms(password: string | undefined): PasswordBytes[] {
  const pw = password ?? '';
  const first = passwordBytes(pw);
  const { utf8 } = first;
  const forms: PasswordBytes[] = [first];
  if (pw === '') forms.push({ bmp: new Uint8Array(0), utf8 });
  else if (utf8.length !== pw.length) {
    // Not ASCII.
    const widened = new Uint8Array(utf8.length * 2 + 2);
    for (let i = 0; i < utf8.length; i++) widened[2 * i + 1] = utf8[i]!;
    forms.push({ bmp: widened, utf8 });
  }
  return forms;
}

/** What deriving the MAC key costs (see {@link Work}). */
function macWork(mac: MacInfo): number {
  return mac.kind === 'pbmac1'
    ? pbkdf2Work(mac.kdf.prf, mac.kdf.iterations, mac.kdf.keyLength)
    : appendixBWork(mac.hash, mac.iterations, HASH_SIZES[mac.hash].u);
}

/** The work one password form costs on what is visible without decryption. */
function pfxWork(pfx: Pfx): number {
  let units = pfx.mac ? macWork(pfx.mac) : 0;
  for (const item of pfx.items) {
    if (item.kind === 'encrypted') units += pbeWork(item.params);
    else for (const bag of item.bags) if (bag.kind === 'shrouded') units += pbeWork(bag.params);
  }
  return units;
}

// ---------------------------------------------------------------------------------------------
// Structure (no cryptography).

/** Reads the PFX structure and every bag that is not encrypted. */
function readPfx(bytes: Uint8Array): Pfx {
  const top = der.decode(bytes);
  const [version, authSafeCi, macData, ...rest] = der.seq(top, 'PFX');
  if (rest.length) throw malformed('PFX has extra fields');
  const v = der.integer(der.expect(version, Tag.INTEGER, 'PFX version'));
  if (v !== 3n) throw new PkiError('ERR_PKI_UNSUPPORTED', `PFX version ${v}`);
  const [ciType, ciContent] = der.seq(authSafeCi, 'authSafe');
  const type = der.oid(der.expect(ciType, Tag.OID, 'authSafe contentType'));
  if (type === SIGNED_DATA)
    throw new PkiError('ERR_PKI_UNSUPPORTED', 'public-key integrity mode (SignedData)');
  if (type !== CMS.data) throw malformed(`authSafe content type ${type}`);
  const authSafe = dataContent(ciContent);
  const mac = macData ? readMacData(macData) : undefined;
  const items: AuthSafeItem[] = [];
  const contentInfos = der.seq(der.decode(authSafe), 'AuthenticatedSafe');
  if (contentInfos.length > MAX_BUNDLE_CERTIFICATES)
    throw new PkiError('ERR_PKI_LIMIT', `more than ${MAX_BUNDLE_CERTIFICATES} ContentInfos`);
  for (const ci of contentInfos) {
    const [t, content] = der.seq(ci, 'ContentInfo');
    const ct = der.oid(der.expect(t, Tag.OID, 'contentType'));
    if (ct === CMS.data) {
      const bags: Bag[] = [];
      readSafeContents(der.decode(dataContent(content)), bags);
      items.push({ kind: 'data', bags });
    } else if (ct === CMS.encryptedData) {
      items.push(readEncryptedData(content));
    } else if (ct === ENVELOPED_DATA) {
      throw new PkiError('ERR_PKI_UNSUPPORTED', 'public-key privacy mode (EnvelopedData)');
    } else throw malformed(`AuthenticatedSafe content type ${ct}`);
  }
  const parts = items.reduce(
    (n, item) =>
      n + (item.kind === 'encrypted' ? 1 : item.bags.filter((b) => b.kind === 'shrouded').length),
    0,
  );
  checkParts(parts);
  return { authSafe, items, mac };
}

function checkParts(n: number): void {
  if (n > MAX_ENCRYPTED_PARTS) {
    throw new PkiError('ERR_PKI_LIMIT', `${n} encrypted parts (limit ${MAX_ENCRYPTED_PARTS})`);
  }
}

/** `content [0] EXPLICIT Data` of a ContentInfo: the OCTET STRING's octets (BER segments joined). */
function dataContent(content: Asn1 | undefined): Uint8Array {
  const [os] = der.children(der.expect(content, der.ctx(0, true), 'ContentInfo content'));
  return der.octets(der.expect(os, Tag.OCTET_STRING | (os?.constructed ? 0x20 : 0), 'Data'));
}

/**
 * ```asn1
 * EncryptedData ::= SEQUENCE { version CMSVersion, encryptedContentInfo EncryptedContentInfo,
 *   unprotectedAttrs [1] IMPLICIT UnprotectedAttributes OPTIONAL }
 * EncryptedContentInfo ::= SEQUENCE { contentType ContentType,
 *   contentEncryptionAlgorithm ContentEncryptionAlgorithmIdentifier,
 *   encryptedContent [0] IMPLICIT EncryptedContent OPTIONAL }
 * ```
 */
function readEncryptedData(content: Asn1 | undefined): AuthSafeItem {
  const [ed] = der.children(der.expect(content, der.ctx(0, true), 'EncryptedData content'));
  const [, eci] = der.seq(ed, 'EncryptedData');
  const [, alg, body] = der.seq(eci, 'EncryptedContentInfo');
  const params = parsePbe(der.expect(alg, Tag.SEQUENCE, 'contentEncryptionAlgorithm'));
  let ciphertext: Uint8Array = new Uint8Array(0);
  if (body) {
    if ((body.tag & 0xdf) !== der.ctx(0, false)) throw malformed('encryptedContent tag');
    ciphertext = der.octets(body);
  }
  return { kind: 'encrypted', params, ciphertext };
}

/** Collects the bags of a SafeContents, descending into safeContentsBags. */
function readSafeContents(node: Asn1, out: Bag[]): void {
  for (const bag of der.seq(node, 'SafeContents')) {
    if (out.length === MAX_BUNDLE_CERTIFICATES)
      throw new PkiError('ERR_PKI_LIMIT', `more than ${MAX_BUNDLE_CERTIFICATES} bags`);
    const [idNode, valueNode, attrNode] = der.seq(bag, 'SafeBag');
    const bagId = der.oid(der.expect(idNode, Tag.OID, 'bagId'));
    const [bagValue] = der.children(der.expect(valueNode, der.ctx(0, true), 'bagValue'));
    if (!bagValue) throw malformed('empty bagValue');
    const attrs = readAttributes(attrNode);
    switch (bagId) {
      case PKCS12_BAGS.certBag: {
        const [certId, certValue] = der.seq(bagValue, 'CertBag');
        if (der.oid(der.expect(certId, Tag.OID, 'certId')) !== PKCS9.x509Certificate) break; // SDSI: skip
        const [os] = der.children(der.expect(certValue, der.ctx(0, true), 'certValue'));
        const certDer = der.octets(
          der.expect(os, os?.constructed ? 0x24 : Tag.OCTET_STRING, 'certificate'),
        );
        out.push({ kind: 'cert', cert: certificateFromAsn1(der.decode(certDer)), attrs });
        break;
      }
      case PKCS12_BAGS.keyBag:
        out.push({ kind: 'key', pkcs8: der.raw(bagValue), attrs });
        break;
      case PKCS12_BAGS.pkcs8ShroudedKeyBag: {
        // EncryptedPrivateKeyInfo ::= SEQUENCE { encryptionAlgorithm, encryptedData OCTET STRING }
        const [alg, data] = der.seq(bagValue, 'EncryptedPrivateKeyInfo');
        const params = parsePbe(der.expect(alg, Tag.SEQUENCE, 'encryptionAlgorithm'));
        const ciphertext = der.octets(
          der.expect(data, data?.constructed ? 0x24 : Tag.OCTET_STRING, 'encryptedData'),
        );
        out.push({ kind: 'shrouded', params, ciphertext, attrs });
        break;
      }
      case PKCS12_BAGS.safeContentsBag:
        readSafeContents(bagValue, out);
        break;
      default:
        break; // crlBag, secretBag and private bag types carry nothing we return
    }
  }
}

/** `SET OF PKCS12Attribute`: friendlyName (BMPString) and localKeyId (OCTET STRING). */
function readAttributes(node: Asn1 | undefined): BagAttributes {
  const attrs: BagAttributes = {};
  if (!node) return attrs;
  for (const a of der.children(der.expect(node, Tag.SET, 'bagAttributes'))) {
    const [id, values] = der.seq(a, 'PKCS12Attribute');
    const oid = der.oid(der.expect(id, Tag.OID, 'attrId'));
    const [first] = der.children(der.expect(values, Tag.SET, 'attrValues'));
    if (!first) continue;
    if (oid === PKCS9.friendlyName) attrs.friendlyName = der.string(first);
    else if (oid === PKCS9.localKeyId)
      attrs.localKeyId = Buffer.from(der.octets(first)).toString('hex');
  }
  return attrs;
}

function readMacData(node: Asn1): MacInfo {
  const [digestInfo, saltNode, iterNode] = der.seq(node, 'MacData');
  const [algId, digestNode] = der.seq(digestInfo, 'DigestInfo');
  const [algOid, algParams] = der.seq(algId, 'digestAlgorithm');
  const oid = der.oid(der.expect(algOid, Tag.OID, 'digestAlgorithm'));
  const digest = der.octets(der.expect(digestNode, Tag.OCTET_STRING, 'digest'));
  if (oid === PBE_OIDS.pbmac1) {
    // PBMAC1-params ::= SEQUENCE { keyDerivationFunc AlgorithmIdentifier, messageAuthScheme AlgorithmIdentifier }
    const [kdfNode, schemeNode] = der.seq(algParams, 'PBMAC1-params');
    const kdf = readPbkdf2(kdfNode);
    if (kdf.keyLength === undefined)
      throw malformed('PBMAC1: PBKDF2 keyLength is required (RFC 9579 §3)');
    const [schemeOid] = der.seq(schemeNode, 'messageAuthScheme');
    const scheme = der.oid(der.expect(schemeOid, Tag.OID, 'messageAuthScheme'));
    const hmac = (
      {
        [PBE_OIDS.hmacWithSHA1]: 'sha1',
        [PBE_OIDS.hmacWithSHA224]: 'sha224',
        [PBE_OIDS.hmacWithSHA256]: 'sha256',
        [PBE_OIDS.hmacWithSHA384]: 'sha384',
        [PBE_OIDS.hmacWithSHA512]: 'sha512',
      } as Record<string, HashName | undefined>
    )[scheme];
    if (!hmac) throw new PkiError('ERR_PKI_UNSUPPORTED', `PBMAC1 scheme ${scheme}`);
    return { kind: 'pbmac1', kdf: { ...kdf, keyLength: kdf.keyLength }, hmac, digest };
  }
  const hash = DIGEST_OIDS[oid];
  if (!hash) throw new PkiError('ERR_PKI_UNSUPPORTED', `MAC digest ${oid}`);
  const salt = der.octets(der.expect(saltNode, Tag.OCTET_STRING, 'macSalt'));
  const iterations = iterNode ? iterationCount(iterNode) : 1; // DEFAULT 1 (openssl -nomaciter)
  return { kind: 'pkcs12', hash, digest, salt, iterations };
}

function describeMac(mac: MacInfo | undefined): Pkcs12Contents['integrity'] {
  if (!mac) return { mac: 'none', iterations: 0 };
  if (mac.kind === 'pbmac1') return { mac: 'pbmac1', iterations: mac.kdf.iterations };
  return { mac: `hmac-${mac.hash}`, iterations: mac.iterations };
}

// ---------------------------------------------------------------------------------------------
// Cryptography.

/**
 * RFC 7292 §4 and Appendix B.3 (MAC key from the Appendix B KDF with ID 3) or RFC 9579 (PBMAC1: PBKDF2 on the
 * UTF-8 password), then HMAC over the AuthenticatedSafe and a constant-time comparison.
 */
async function verifyMac(
  mac: MacInfo,
  data: Uint8Array,
  password: PasswordBytes,
  work: Work,
): Promise<boolean> {
  work.charge(macWork(mac), 'MAC');
  let key: Uint8Array;
  let hmacHash: HashName;
  if (mac.kind === 'pbmac1') {
    key = await pbkdf2Async(
      password.utf8,
      mac.kdf.salt,
      mac.kdf.iterations,
      mac.kdf.keyLength,
      mac.kdf.prf,
    );
    hmacHash = mac.hmac;
  } else {
    key = pkcs12Kdf(
      mac.hash,
      password.bmp,
      mac.salt,
      KDF_ID.mac,
      mac.iterations,
      HASH_SIZES[mac.hash].u,
    );
    hmacHash = mac.hash;
  }
  const actual = createHmac(hmacHash, key).update(data).digest();
  return actual.length === mac.digest.length && timingSafeEqual(actual, mac.digest);
}

type Opened = Omit<Pkcs12Contents, 'integrity'>;

/**
 * Like `Promise.all`, but waits for every promise before reporting the first failure, so that
 * {@link Progress} counts every part that did decrypt.
 */
async function allSettled<T>(promises: readonly Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(promises);
  return settled.map((r) => {
    if (r.status === 'rejected') throw asPkiError(r.reason);
    return r.value;
  });
}

/** How many encrypted parts decrypted to well-formed content, successes counted even if another part failed. */
interface Progress {
  decrypted: number;
}

/**
 * Decrypts every encrypted part with one password form, all derivations started at once.
 * Content that decrypts with bad padding or does not parse is `ERR_PKI_BAD_PASSWORD`.
 */
async function openItems(
  pfx: Pfx,
  password: PasswordBytes,
  work: Work,
  progress: Progress = { decrypted: 0 },
): Promise<Opened> {
  const openBags = (bags: readonly Bag[], protectedBy: string | undefined) =>
    allSettled(
      bags.map(async (bag): Promise<{ scheme: string; value: Pkcs12Certificate | PrivateKey }> => {
        const scheme = bag.kind === 'shrouded' ? bag.params.name : (protectedBy ?? 'none');
        if (bag.kind === 'cert') return { scheme, value: { certificate: bag.cert, ...bag.attrs } };
        if (bag.kind === 'key') {
          const key = parsePrivateKeyDer(bag.pkcs8, 'pkcs8');
          return { scheme, value: describePrivateKey(key.key, bag.attrs) };
        }
        work.charge(pbeWork(bag.params), 'pkcs8ShroudedKeyBag');
        const pkcs8 = await pbeDecrypt(bag.params, password, bag.ciphertext);
        const alg = privateKeyAlgorithm(pkcs8);
        if (alg === undefined) throw decryptFailed();
        let key: PrivateKey;
        try {
          key = parsePrivateKeyDer(pkcs8, 'pkcs8');
        } catch (e) {
          // OpenSSL reports a damaged key of a known type as "unsupported"; only an unknown
          // algorithm is really unsupported, anything else is a wrong key or a modified file.
          if (isPkiError(e, 'ERR_PKI_UNSUPPORTED') && !KNOWN_KEY_ALGORITHMS.has(alg)) throw e;
          throw decryptFailed();
        }
        progress.decrypted++;
        return { scheme, value: describePrivateKey(key.key, bag.attrs) };
      }),
    );
  const parts = await allSettled(
    pfx.items.map(async (item) => {
      if (item.kind === 'data') return openBags(item.bags, undefined);
      // Decrypted SafeContents that does not parse means a wrong key, never a malformed file.
      work.charge(pbeWork(item.params), 'EncryptedData');
      const plain = await pbeDecrypt(item.params, password, item.ciphertext);
      // A wrong key decrypts to random octets with valid padding about once in 256 tries; their
      // DER may trip any check of the decoder (a length field of five octets is a limit there),
      // so anything but complete DER is a wrong key.
      let contents: Asn1;
      try {
        contents = der.decode(plain);
      } catch {
        throw decryptFailed();
      }
      const bags: Bag[] = [];
      try {
        readSafeContents(contents, bags);
      } catch (e) {
        // Only the right key decrypts to DER that parses far enough for these.
        if (isPkiError(e, 'ERR_PKI_UNSUPPORTED') || isPkiError(e, 'ERR_PKI_LIMIT')) throw e;
        throw decryptFailed();
      }
      checkParts(bags.filter((b) => b.kind === 'shrouded').length + pfx.items.length);
      progress.decrypted++;
      const opened = await openBags(bags, item.params.name);
      return opened.length ? opened : [{ scheme: item.params.name, value: undefined }];
    }),
  );
  const certificates: Pkcs12Certificate[] = [];
  const keys: PrivateKey[] = [];
  const encryption: string[] = [];
  for (const { scheme, value } of parts.flat()) {
    if (!encryption.includes(scheme)) encryption.push(scheme);
    if (!value) continue;
    if ('certificate' in value) certificates.push(value);
    else keys.push(value);
  }
  return { certificates, keys, encryption };
}

/** Key algorithms Node reads from PKCS#8 (those of `ALG`, and PKCS#3 DH). */
const KNOWN_KEY_ALGORITHMS: ReadonlySet<string> = new Set([
  ...Object.values(ALG),
  '1.2.840.113549.1.3.1',
]);

/**
 * The algorithm OID of a complete DER PrivateKeyInfo (RFC 5958:
 * `SEQUENCE { version INTEGER (0|1), privateKeyAlgorithm AlgorithmIdentifier, privateKey OCTET STRING, … }`),
 * or undefined when the bytes do not have that shape.
 */
function privateKeyAlgorithm(bytes: Uint8Array): string | undefined {
  try {
    const [version, alg, key] = der.seq(der.decode(bytes), 'PrivateKeyInfo');
    const v = der.integer(der.expect(version, Tag.INTEGER, 'version'));
    const oid = der.oid(der.seq(alg, 'privateKeyAlgorithm')[0]!);
    der.expect(key, Tag.OCTET_STRING, 'privateKey');
    return v === 0n || v === 1n ? oid : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Writing.

export interface Pkcs12Input {
  key?: PrivateKey;
  /** The first is the key's certificate; the rest its chain. */
  certificates: Certificate[];
  friendlyName?: string;
}

export type Pkcs12Profile = 'modern' | 'compat';

const PROFILES = {
  modern: { iterations: 2048, mac: 'sha256', params: pbes2Aes256Params },
  compat: { iterations: 2000, mac: 'sha1', params: pbeSha13DesParams },
} as const satisfies Record<
  Pkcs12Profile,
  { iterations: number; mac: HashName; params: (n: number) => PbeParams }
>;

const DIGEST_OID_OF: Readonly<Record<'sha1' | 'sha256', string>> = {
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
};

/**
 * Writes a PFX (DER) with the key and its certificates, protected by `password` in the given
 * profile (see the file header). The key must belong to the first certificate.
 */
export async function encodePkcs12(
  input: Pkcs12Input,
  password: string,
  options: { profile?: Pkcs12Profile; iterations?: number } = {},
): Promise<Uint8Array> {
  const profile = PROFILES[options.profile ?? 'modern'];
  if (!profile)
    throw new PkiError('ERR_PKI_INVALID_ARGUMENT', `unknown profile ${String(options.profile)}`);
  const iterations = options.iterations ?? profile.iterations;
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > MAX_WRITE_ITERATIONS) {
    throw new PkiError('ERR_PKI_INVALID_ARGUMENT', `iterations must be 1..${MAX_WRITE_ITERATIONS}`);
  }
  if (typeof password !== 'string') throw new PkiError('ERR_PKI_INVALID_ARGUMENT', 'password');
  const [leaf] = input.certificates;
  if (!input.key && !leaf) throw new PkiError('ERR_PKI_INVALID_ARGUMENT', 'nothing to write');
  if (input.key && (!leaf || !keyBelongsTo(input.key, leaf))) {
    throw new PkiError(
      'ERR_PKI_INVALID_ARGUMENT',
      'the key does not belong to the first certificate',
    );
  }
  const pw = passwordBytes(password);
  const localKeyId =
    input.key && leaf ? new Uint8Array(createHash('sha1').update(leaf.der).digest()) : undefined;
  const leafAttrs = attributes(input.friendlyName, localKeyId);

  const certBags = input.certificates.map((c, i) =>
    safeBag(
      PKCS12_BAGS.certBag,
      enc.seq(enc.oid(PKCS9.x509Certificate), enc.ctx(0, enc.octets(c.der))),
      i === 0 ? leafAttrs : undefined,
    ),
  );
  const certParams = profile.params(iterations);
  const keyParams = profile.params(iterations);
  const [certCipher, keyCipher] = await Promise.all([
    certBags.length ? pbeEncrypt(certParams, pw, enc.seq(...certBags)) : undefined,
    input.key
      ? pbeEncrypt(
          keyParams,
          pw,
          new Uint8Array(input.key.key.export({ type: 'pkcs8', format: 'der' })),
        )
      : undefined,
  ]);
  const contentInfos: Uint8Array[] = [];
  if (certCipher) {
    contentInfos.push(
      enc.seq(
        enc.oid(CMS.encryptedData),
        enc.ctx(
          0,
          enc.seq(
            enc.int(0),
            enc.seq(enc.oid(CMS.data), encodePbe(certParams), enc.ctxPrim(0, certCipher)),
          ),
        ),
      ),
    );
  }
  if (keyCipher) {
    const keyBag = safeBag(
      PKCS12_BAGS.pkcs8ShroudedKeyBag,
      enc.seq(encodePbe(keyParams), enc.octets(keyCipher)),
      leafAttrs,
    );
    contentInfos.push(enc.seq(enc.oid(CMS.data), enc.ctx(0, enc.octets(enc.seq(keyBag)))));
  }
  const authSafe = enc.seq(...contentInfos);
  const macSalt = new Uint8Array(randomBytes(8));
  const macKey = pkcs12Kdf(
    profile.mac,
    pw.bmp,
    macSalt,
    KDF_ID.mac,
    iterations,
    HASH_SIZES[profile.mac].u,
  );
  const mac = new Uint8Array(createHmac(profile.mac, macKey).update(authSafe).digest());
  return enc.seq(
    enc.int(3),
    enc.seq(enc.oid(CMS.data), enc.ctx(0, enc.octets(authSafe))),
    enc.seq(
      enc.seq(enc.seq(enc.oid(DIGEST_OID_OF[profile.mac]), enc.null()), enc.octets(mac)),
      enc.octets(macSalt),
      enc.int(iterations),
    ),
  );
}

/**
 * `keyMatchesCertificate`, guarded: on Node 24.21 `KeyObject.equals` between keys of different
 * types leaves an OpenSSL error queued that makes the next `createPrivateKey` fail, so keys of
 * different algorithms are told apart by their SubjectPublicKeyInfo algorithm first.
 */
function keyBelongsTo(key: PrivateKey, cert: Certificate): boolean {
  if (key.info.type !== publicKeyInfo(cert.spki).type) return false;
  return keyMatchesCertificate(key, cert);
}

function safeBag(bagId: string, value: Uint8Array, attrs: Uint8Array | undefined): Uint8Array {
  return attrs
    ? enc.seq(enc.oid(bagId), enc.ctx(0, value), attrs)
    : enc.seq(enc.oid(bagId), enc.ctx(0, value));
}

function attributes(
  friendlyName: string | undefined,
  localKeyId: Uint8Array | undefined,
): Uint8Array | undefined {
  const list: Uint8Array[] = [];
  if (friendlyName !== undefined)
    list.push(enc.seq(enc.oid(PKCS9.friendlyName), enc.setOf(enc.bmp(friendlyName))));
  if (localKeyId) list.push(enc.seq(enc.oid(PKCS9.localKeyId), enc.setOf(enc.octets(localKeyId))));
  return list.length ? enc.setOf(...list) : undefined;
}
