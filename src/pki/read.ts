/**
 * Reads any certificate-related file from bytes, with the format sniffed from the content.
 * The file name is only a hint: it never decides the parser, but a mismatch is reported in
 * `notes` so a person learns that `cert.p12` was really PEM.
 *
 * Order of the checks: empty → PEM text → bare base64 text (as MDM payloads carry DER) →
 * DER certificate → PKCS#7 → PKCS#12 → CSR → private key. Anything else is
 * `ERR_PKI_UNRECOGNIZED`; a DER value cut short is `ERR_PKI_TRUNCATED`.
 */
import * as der from './der.ts';
import { isPkiError, PkiError } from './errors.ts';
import {
  parsePrivateKeyDer,
  parsePrivateKeyPem,
  sniffPrivateKeyEncoding,
  type PrivateKey,
} from './keys.ts';
import { decodePem, looksLikePem } from './pem.ts';
import { looksLikePkcs12, parsePkcs12, type Pkcs12Contents } from './pkcs12.ts';
import { looksLikePkcs7, MAX_BUNDLE_CERTIFICATES, parsePkcs7Certificates } from './pkcs7.ts';
import { looksLikeCsr, parseCsr, type CertificationRequest } from './csr.ts';
import { certificateFromAsn1, looksLikeCertificate, type Certificate } from './x509.ts';

/** What the content is: the stable JSON values. */
export type PkiFormat = 'der' | 'pem' | 'pkcs7' | 'pkcs12' | 'csr' | 'key';

export interface PkiContents {
  readonly format: PkiFormat;
  /** How the bytes were wrapped: binary DER/BER, PEM armour, or bare base64 text. */
  readonly encoding: 'binary' | 'pem' | 'base64';
  readonly certificates: readonly Certificate[];
  /** friendlyName per certificate, by index, when the file carried one (PKCS#12). */
  readonly friendlyNames: ReadonlyMap<Certificate, string>;
  readonly keys: readonly PrivateKey[];
  readonly csrs: readonly CertificationRequest[];
  readonly pkcs12?: Pick<Pkcs12Contents, 'integrity' | 'encryption'>;
  /** Human remarks: ignored PEM blocks, an extension that does not match the content. */
  readonly notes: readonly string[];
}

export interface ReadOptions {
  /** Password for PKCS#12 and encrypted keys; `undefined` means none was given. */
  readonly password?: string | undefined;
  /** The file name or URL path, used only for notes. */
  readonly filename?: string | undefined;
  readonly maxIterations?: number;
}

const EXTENSION_FORMATS: Readonly<Record<string, PkiFormat>> = {
  cer: 'der',
  crt: 'der',
  der: 'der',
  pem: 'pem',
  p7b: 'pkcs7',
  p7c: 'pkcs7',
  pfx: 'pkcs12',
  p12: 'pkcs12',
  csr: 'csr',
  req: 'csr',
  key: 'key',
};

/** Reads `bytes` and returns every certificate, key and CSR in it. */
export async function readPki(bytes: Uint8Array, options: ReadOptions = {}): Promise<PkiContents> {
  if (bytes.length === 0) throw new PkiError('ERR_PKI_EMPTY', 'the file is empty');
  const contents = await sniffAndRead(bytes, options, true);
  const notes = [...contents.notes];
  const ext = options.filename?.toLowerCase().match(/\.([a-z0-9]+)$/)?.[1];
  const hinted = ext ? EXTENSION_FORMATS[ext] : undefined;
  const compatible =
    hinted === contents.format ||
    (hinted === 'der' && contents.format === 'pem') ||
    (hinted === 'pem' && contents.encoding === 'pem');
  if (hinted && !compatible) {
    notes.push(`the name ends in .${ext}, but the content is ${describe(contents)}`);
  }
  return { ...contents, notes };
}

/** Asks for a password; `wrong` is true when the previous answer was wrong. */
export type PasswordPrompt = (request: {
  readonly attempt: number;
  readonly wrong: boolean;
}) => Promise<string | undefined>;

/**
 * {@link readPki}, asking for the password when the content needs one: when no password was
 * given (or the given one is the empty password a PKCS#12 tried), and again after each wrong
 * answer, up to `attempts` questions (3 by default). A wrong password that was *given* is not
 * asked again: scripts get the error at once. `ask` answering undefined gives up with the last
 * error; so does the last wrong answer (`ERR_PKI_BAD_PASSWORD`).
 */
export async function readPkiWithPassword(
  bytes: Uint8Array,
  options: ReadOptions & { readonly ask?: PasswordPrompt; readonly attempts?: number },
): Promise<PkiContents> {
  const attempts = options.attempts ?? 3;
  let password = options.password;
  for (let asked = 0; ; asked++) {
    try {
      return await readPki(bytes, { ...options, password });
    } catch (e) {
      const again =
        isPkiError(e, 'ERR_PKI_PASSWORD_REQUIRED') ||
        (isPkiError(e, 'ERR_PKI_BAD_PASSWORD') && asked > 0);
      if (!again || !options.ask || asked >= attempts) throw e;
      const answer = await options.ask({ attempt: asked + 1, wrong: asked > 0 });
      if (answer === undefined) throw e;
      password = answer;
    }
  }
}

/**
 * The format {@link readPki} would find, judged by structure alone: no decryption and no key
 * derivation, so it is cheap on any input (a mail attachment, a download). Null when the
 * bytes are none of the formats. PEM is judged by its block labels: certificates (or a PKCS7
 * block) make `pem`/`pkcs7`, otherwise keys make `key` and requests `csr`.
 */
export function sniffPkiFormat(bytes: Uint8Array, allowBase64 = true): PkiFormat | null {
  if (bytes.length === 0) return null;
  if (looksLikePem(bytes)) {
    let labels: string[];
    try {
      labels = decodePem(bytes).map((b) => b.label);
    } catch {
      return null;
    }
    if (labels.some((l) => CERT_LABELS.has(l))) return 'pem';
    if (labels.includes('PKCS7')) return 'pkcs7';
    if (labels.some((l) => KEY_LABELS.has(l))) return 'key';
    if (labels.some((l) => CSR_LABELS.has(l))) return 'csr';
    return null;
  }
  const b64 = allowBase64 ? bareBase64(bytes) : null;
  if (b64) return sniffPkiFormat(b64, false);
  if (looksLikeCertificate(bytes)) return 'der';
  if (looksLikePkcs7(bytes)) return 'pkcs7';
  if (looksLikePkcs12(bytes)) return 'pkcs12';
  if (looksLikeCsr(bytes)) return 'csr';
  return sniffPrivateKeyEncoding(bytes) ? 'key' : null;
}

function describe(c: PkiContents): string {
  const enc = c.encoding === 'binary' ? 'binary' : c.encoding === 'pem' ? 'PEM' : 'base64';
  const what = {
    der: 'a certificate',
    pem: 'PEM certificates',
    pkcs7: 'a PKCS#7 bundle',
    pkcs12: 'PKCS#12',
    csr: 'a certificate request',
    key: 'a private key',
  }[c.format];
  return `${what} (${enc})`;
}

function empty(format: PkiFormat, encoding: PkiContents['encoding']): PkiContents {
  return {
    format,
    encoding,
    certificates: [],
    friendlyNames: new Map(),
    keys: [],
    csrs: [],
    notes: [],
  };
}

async function sniffAndRead(
  bytes: Uint8Array,
  options: ReadOptions,
  allowBase64: boolean,
): Promise<PkiContents> {
  if (looksLikePem(bytes)) return readPem(bytes, options);
  if (allowBase64) {
    const b64 = bareBase64(bytes);
    if (b64) return { ...(await sniffAndRead(b64, options, false)), encoding: 'base64' };
  }
  if (looksLikeCertificate(bytes)) {
    return { ...empty('der', 'binary'), certificates: readConcatenatedCertificates(bytes) };
  }
  if (looksLikePkcs7(bytes))
    return { ...empty('pkcs7', 'binary'), certificates: parsePkcs7Certificates(bytes) };
  if (looksLikePkcs12(bytes)) {
    const p12 = await parsePkcs12(
      bytes,
      options.password,
      options.maxIterations ? { maxIterations: options.maxIterations } : {},
    );
    const friendlyNames = new Map<Certificate, string>();
    for (const c of p12.certificates)
      if (c.friendlyName !== undefined) friendlyNames.set(c.certificate, c.friendlyName);
    return {
      ...empty('pkcs12', 'binary'),
      certificates: p12.certificates.map((c) => c.certificate),
      friendlyNames,
      keys: p12.keys,
      pkcs12: { integrity: p12.integrity, encryption: p12.encryption },
    };
  }
  if (looksLikeCsr(bytes)) return { ...empty('csr', 'binary'), csrs: [parseCsr(bytes)] };
  const keyEncoding = sniffPrivateKeyEncoding(bytes);
  if (keyEncoding)
    return {
      ...empty('key', 'binary'),
      keys: [
        parsePrivateKeyDer(bytes, keyEncoding, options.password, {
          maxIterations: options.maxIterations,
        }),
      ],
    };
  // Not recognised: if it is DER cut short, say "truncated" rather than "unknown format".
  if (bytes[0] === 0x30) {
    try {
      der.decode(bytes, true);
    } catch (e) {
      if (isPkiError(e, 'ERR_PKI_TRUNCATED')) throw e;
    }
  }
  throw new PkiError('ERR_PKI_UNRECOGNIZED');
}

/** Refuses a file with more certificates than a bundle may have (PKCS#7's cap, for every format). */
function checkCount(certificates: readonly Certificate[]): void {
  if (certificates.length > MAX_BUNDLE_CERTIFICATES)
    throw new PkiError('ERR_PKI_LIMIT', `more than ${MAX_BUNDLE_CERTIFICATES} certificates`);
}

/** DER certificates back to back (some tools concatenate .cer files). */
function readConcatenatedCertificates(bytes: Uint8Array): Certificate[] {
  const out: Certificate[] = [];
  for (let p = 0; p < bytes.length;) {
    const node = der.readTlv(bytes, p, bytes.length, 0);
    out.push(certificateFromAsn1(node));
    checkCount(out);
    p = node.end;
    // Trailing NULs or whitespace after the last certificate are tolerated (Windows pads).
    if (bytes.subarray(p).every((b) => b === 0 || b === 0x0a || b === 0x0d || b === 0x20)) break;
  }
  return out;
}

/** The decoded bytes when the whole input is base64 text (whitespace allowed), else null. */
function bareBase64(bytes: Uint8Array): Uint8Array | null {
  if (bytes.length < 16 || bytes.length > 64 << 20) return null;
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    .toString('latin1')
    .replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text) || text.length % 4 === 1) return null;
  const out = new Uint8Array(Buffer.from(text, 'base64'));
  return out[0] === 0x30 ? out : null;
}

const CERT_LABELS = new Set(['CERTIFICATE', 'X509 CERTIFICATE', 'TRUSTED CERTIFICATE']);
const KEY_LABELS = new Set([
  'PRIVATE KEY',
  'ENCRYPTED PRIVATE KEY',
  'RSA PRIVATE KEY',
  'EC PRIVATE KEY',
]);
const CSR_LABELS = new Set(['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST']);

async function readPem(bytes: Uint8Array, options: ReadOptions): Promise<PkiContents> {
  const certificates: Certificate[] = [];
  const keys: PrivateKey[] = [];
  const csrs: CertificationRequest[] = [];
  const notes: string[] = [];
  let pkcs7 = false;
  for (const block of decodePem(bytes)) {
    if (CERT_LABELS.has(block.label)) {
      // OpenSSL's TRUSTED CERTIFICATE appends trust settings after the certificate.
      certificates.push(
        certificateFromAsn1(der.decode(block.der, block.label === 'TRUSTED CERTIFICATE')),
      );
    } else if (block.label === 'PKCS7') {
      pkcs7 = true;
      certificates.push(...parsePkcs7Certificates(block.der));
      checkCount(certificates);
    } else if (KEY_LABELS.has(block.label)) {
      keys.push(
        parsePrivateKeyPem(block.text, options.password, { maxIterations: options.maxIterations }),
      );
    } else if (CSR_LABELS.has(block.label)) {
      csrs.push(parseCsr(block.der));
    } else {
      notes.push(`ignored a PEM block "${block.label}"`);
    }
  }
  if (certificates.length + keys.length + csrs.length === 0) {
    throw new PkiError('ERR_PKI_UNRECOGNIZED', notes.length ? notes.join('; ') : 'no PEM block');
  }
  const format: PkiFormat =
    certificates.length === 0
      ? csrs.length
        ? 'csr'
        : 'key'
      : pkcs7 && keys.length === 0
        ? 'pkcs7'
        : 'pem';
  return { format, encoding: 'pem', certificates, friendlyNames: new Map(), keys, csrs, notes };
}
