/**
 * The CA's own material: creating a root + issuing CA, keeping it in the data directory as
 * encrypted PKCS#8, and importing an existing CA from a PFX or PEM.
 *
 * Hierarchy made by {@link createAuthority} (RFC 5280 §4.2.1.9, §4.2.1.3):
 * - root: self-signed; basicConstraints cA (critical); keyUsage keyCertSign + cRLSign
 *   (critical); subjectKeyIdentifier.
 * - issuing CA, signed by the root: cA with pathLenConstraint 0 (critical); keyUsage
 *   keyCertSign + cRLSign + digitalSignature (+ keyEncipherment for an RSA key: SCEP clients
 *   sign to, and pick the encryption certificate by, these bits — scep-reference.md §1.2, §3);
 *   SKI; AKI = the root's SKI.
 * - RA / decrypter (only when the issuing key cannot decrypt, i.e. is not RSA): SCEP wraps the
 *   content key with RSA PKCS#1 v1.5 (design.md §3), so an EC CA gets an RSA-2048 certificate
 *   issued by the issuing CA with keyUsage digitalSignature + keyEncipherment and no EKU,
 *   which GetCACert offers as the encryption certificate — step-ca's "decrypter" does the same.
 *   An EC issuing CA does not get keyEncipherment itself: RFC 5480 §3 does not allow it for
 *   id-ecPublicKey.
 *
 * Subject strings here are RFC 4514 (`CN=certpost Root CA,O=Example`: last RDN first when
 * encoded, as {@link parseRfc4514} and `openssl -nameopt RFC2253` write them).
 *
 * Keys are {@link PrivateKeyRef}s: software keys (generated here, saved encrypted) or keys
 * held by a token (made by the caller's {@link KeySource}, e.g. in a PKCS#11 token; saved as a
 * reference, opened again through {@link LoadAuthorityOptions}). This module never talks to a
 * token itself.
 */
import { generateKeyPair, type KeyObject } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { writeAtomicFile } from '../util/atomic-file.ts';
import { join } from 'node:path';
import { verifySignature } from '../pki/chain.ts';
import { PkiError } from '../pki/errors.ts';
import {
  deferredKey,
  isExternalKey,
  keyTypeOf,
  publicKeyOf,
  spkiOf,
  type ExternalKey,
  type PrivateKeyRef,
} from '../pki/key-ref.ts';
import { keyMatchesCertificate, parsePrivateKeyPem, publicKeyFromSpki } from '../pki/keys.ts';
import { ALG, type KeyUsageName } from '../pki/oids.ts';
import { decodePem, encodePem } from '../pki/pem.ts';
import { readPki } from '../pki/read.ts';
import {
  basicConstraints as basicConstraintsOf,
  formatName,
  isSelfIssued,
  keyUsage as keyUsageOf,
  namesEqual,
  parseCertificate,
  parseName,
  type Certificate,
} from '../pki/x509.ts';
import * as der from '../pki/der.ts';
import {
  authorityKeyIdentifier,
  basicConstraints,
  buildCertificate,
  crlDistributionPoints,
  keyUsage,
  subjectKeyIdentifier,
  type ExtensionInput,
} from './certificate.ts';
import { randomSerial } from './issuer.ts';
import { encodeName, parseRfc4514 } from './name.ts';
import { BACKDATE_MS } from './profile.ts';

/** A certificate with its private key (software, or held by a token). */
export interface CaKeyPair {
  readonly certificate: Certificate;
  readonly key: PrivateKeyRef;
}

/**
 * Everything the CA signs and decrypts with. `root.key` is absent for an imported CA whose
 * file carried only the issuing key (the usual case: roots stay offline). `intermediates`
 * lists certificates between the issuing CA and the root, the issuing CA's issuer first
 * (empty for a created authority). `ra` exists when the issuing CA cannot serve as the SCEP
 * encryption certificate (see the module comment).
 */
export interface CaMaterial {
  readonly root: { readonly certificate: Certificate; readonly key?: PrivateKeyRef };
  readonly intermediates: readonly Certificate[];
  readonly issuing: CaKeyPair;
  readonly ra?: CaKeyPair;
}

export interface CreateAuthorityOptions {
  readonly keyType: 'rsa' | 'ec';
  /** Default 2048 (the RA key is always RSA-2048). */
  readonly rsaBits?: 2048 | 3072 | 4096;
  /** Default P-256. */
  readonly curve?: 'P-256' | 'P-384';
  /** RFC 4514 string, e.g. `CN=certpost Root CA,O=Example`. */
  readonly rootSubject: string;
  readonly issuingSubject: string;
  /** RFC 4514 string; default: the issuing subject with ` SCEP RA` appended to its CN. */
  readonly raSubject?: string;
  /** Default 3650 (10 years). */
  readonly rootValidityDays?: number;
  /** Default 1825 (5 years); capped at the root's notAfter. */
  readonly issuingValidityDays?: number;
  /**
   * Where the issuing CA's CRL is published. Written into the RA certificate (which the
   * issuing CA issues); leaf certificates get theirs from `IssuanceProfile.crlUrl`. The
   * issuing CA's own certificate has no CRL distribution point: the root's CRL is not ours
   * to publish.
   */
  readonly crlUrl?: string;
  readonly now?: Date;
}

/** What a key is, as generation needs it: the type and the size or curve. */
export type AuthorityKeySpec =
  { readonly type: 'rsa'; readonly bits: number } | { readonly type: 'ec'; readonly curve: string };

/** Which certificate of the CA a key is for. */
export type KeyRole = 'root' | 'issuing' | 'ra';

/**
 * Where the keys of a created, rolled-over or imported CA come from: made for a role (`ra`
 * only when the issuing CA cannot decrypt, see the module comment), or taken in from the
 * software key of an imported CA. {@link SOFTWARE_KEYS} by default; a CA held by a PKCS#11
 * token passes a source that makes and takes them into the token.
 */
export interface KeySource {
  generate(spec: AuthorityKeySpec, role: KeyRole): Promise<PrivateKeyRef>;
  adopt(key: KeyObject, role: KeyRole): Promise<PrivateKeyRef>;
}

/** Software keys: generated in the thread pool; an imported key is kept as it is. */
export const SOFTWARE_KEYS: KeySource = {
  generate: (spec) => generate(spec),
  adopt: async (key) => key,
};

/** The RA/decrypter key (module comment): RSA, as SCEP wraps content keys to it. */
const RA_KEY_SPEC: AuthorityKeySpec = { type: 'rsa', bits: 2048 };

/** OpenSSL's curve names → the NIST names key generation takes. */
const NIST_CURVES: Readonly<Record<string, string>> = {
  prime256v1: 'P-256',
  secp384r1: 'P-384',
  secp521r1: 'P-521',
};

/**
 * The spec of an existing key, so that a rollover makes the next key alike: the same RSA size
 * or the same curve, whatever they are (a token refuses what it cannot make).
 */
export function keySpecOf(key: PrivateKeyRef): AuthorityKeySpec {
  const pub = publicKeyOf(key);
  const d = pub.asymmetricKeyDetails;
  if (pub.asymmetricKeyType === 'rsa' && d?.modulusLength)
    return { type: 'rsa', bits: d.modulusLength };
  if (pub.asymmetricKeyType === 'ec' && d?.namedCurve)
    return { type: 'ec', curve: NIST_CURVES[d.namedCurve] ?? d.namedCurve };
  throw new PkiError('ERR_PKI_UNSUPPORTED', `a ${pub.asymmetricKeyType ?? 'unknown'} CA key`);
}

const DAY_MS = 86_400_000;

function generate(
  spec: { type: 'rsa'; bits: number } | { type: 'ec'; curve: string },
): Promise<KeyObject> {
  return new Promise((resolve, reject) => {
    const cb = (err: Error | null, _pub: KeyObject, priv: KeyObject) =>
      err ? reject(err) : resolve(priv);
    if (spec.type === 'rsa')
      generateKeyPair('rsa', { modulusLength: spec.bits, publicExponent: 0x10001 }, cb);
    else generateKeyPair('ec', { namedCurve: spec.curve }, cb);
  });
}

function validity(now: Date, days: number, cap?: Date): { notBefore: Date; notAfter: Date } {
  const t = Math.floor(now.getTime() / 1000) * 1000;
  const notAfter = new Date(t + days * DAY_MS);
  return { notBefore: new Date(t - BACKDATE_MS), notAfter: cap && notAfter > cap ? cap : notAfter };
}

/** Signs a certificate for `subjectKey` under `issuer` and parses it back. */
async function certify(
  subject: Uint8Array,
  subjectKey: PrivateKeyRef,
  issuer: { name: Uint8Array; key: PrivateKeyRef; spki: Uint8Array },
  period: { notBefore: Date; notAfter: Date },
  extensions: ExtensionInput[],
): Promise<Certificate> {
  const bytes = await buildCertificate({
    subject,
    spki: spkiOf(subjectKey),
    serial: randomSerial(),
    ...period,
    issuer,
    extensions,
  });
  return parseCertificate(bytes);
}

/** The issuing subject with ` SCEP RA` appended to its (last) CN, or a CN added first. */
function defaultRaSubject(issuingName: Uint8Array): Uint8Array {
  const rdns = parseName(der.decode(issuingName), 'issuing subject').rdns.map((rdn) =>
    rdn.map((a) => ({ type: a.oid, value: a.value })),
  );
  for (let i = rdns.length - 1; i >= 0; i--) {
    const cn = rdns[i]!.findIndex((a) => a.type === '2.5.4.3');
    if (cn >= 0) {
      rdns[i]![cn] = { type: '2.5.4.3', value: `${rdns[i]![cn]!.value} SCEP RA` };
      return encodeName(rdns);
    }
  }
  return encodeName([...rdns, [{ type: 'CN', value: 'SCEP RA' }]]);
}

/**
 * The RA/decrypter an issuing CA needs (module comment), or undefined when it can be SCEP's
 * encryption certificate itself: the one rule for created, rolled-over and imported CAs.
 * Its RSA-2048 key comes from `keys`; its certificate has keyUsage digitalSignature +
 * keyEncipherment (critical), no EKU, SKI, AKI, and a CRL DP when given.
 */
async function raFor(
  issuing: CaKeyPair,
  options: {
    readonly subject?: Uint8Array;
    readonly crlUrl?: string;
    readonly now?: Date;
    readonly keys: KeySource;
  },
): Promise<CaKeyPair | undefined> {
  if (canDecrypt(issuing.certificate)) return undefined;
  const key = await options.keys.generate(RA_KEY_SPEC, 'ra');
  if (keyTypeOf(key) !== 'rsa')
    throw new PkiError('ERR_PKI_INVALID_ARGUMENT', 'the RA key must be RSA (SCEP encrypts to it)');
  const now = options.now ?? new Date();
  const period = validity(
    now,
    Math.max(1, (issuing.certificate.notAfter.getTime() - now.getTime()) / DAY_MS),
    issuing.certificate.notAfter,
  );
  const spki = spkiOf(key);
  const certificate = await certify(
    options.subject ?? defaultRaSubject(issuing.certificate.subject.der),
    key,
    { name: issuing.certificate.subject.der, key: issuing.key, spki: issuing.certificate.spki },
    period,
    [
      keyUsage(['digitalSignature', 'keyEncipherment']),
      subjectKeyIdentifier(spki),
      authorityKeyIdentifier(issuing.certificate.spki),
      ...(options.crlUrl !== undefined ? [crlDistributionPoints([options.crlUrl])] : []),
    ],
  );
  return { certificate, key };
}

/**
 * Certifies an issuing CA key under the root: CA:TRUE pathlen:0; keyCertSign, cRLSign and
 * digitalSignature, plus keyEncipherment for RSA (SCEP clients encrypt to it); SKI and AKI.
 */
async function certifyIssuingCa(
  key: PrivateKeyRef,
  subject: Uint8Array,
  root: { readonly certificate: Certificate; readonly key: PrivateKeyRef },
  days: number,
  now: Date,
): Promise<CaKeyPair> {
  const spki = spkiOf(key);
  const usage: KeyUsageName[] = ['digitalSignature', 'keyCertSign', 'cRLSign'];
  if (keyTypeOf(key) === 'rsa') usage.push('keyEncipherment');
  const certificate = await certify(
    subject,
    key,
    { name: root.certificate.subject.der, key: root.key, spki: root.certificate.spki },
    validity(now, days, root.certificate.notAfter),
    [
      basicConstraints(true, 0),
      keyUsage(usage),
      subjectKeyIdentifier(spki),
      authorityKeyIdentifier(root.certificate.spki),
    ],
  );
  return { certificate, key };
}

/**
 * The next issuing CA for a rollover (RFC 8894 §4.7, GetNextCACert): a new key of the same
 * type and size as the current issuing CA's, certified by the same root, with the same subject
 * unless another is given; an RA certificate when the CA needs one. Needs the root key: an
 * imported CA without it cannot roll over here. The new keys come from `keys` (a token CA's are
 * made in its token).
 */
export async function createNextAuthority(
  current: CaMaterial,
  options: {
    readonly issuingSubject?: string;
    readonly issuingValidityDays?: number;
    readonly now?: Date;
  } = {},
  keys: KeySource = SOFTWARE_KEYS,
): Promise<CaMaterial> {
  const rootKey = current.root.key;
  if (!rootKey)
    throw new PkiError(
      'ERR_PKI_INVALID_ARGUMENT',
      'rolling the CA over needs the root key, which this data directory does not hold',
    );
  const now = options.now ?? new Date();
  const subject =
    options.issuingSubject !== undefined
      ? parseRfc4514(options.issuingSubject)
      : current.issuing.certificate.subject.der;
  const issuing = await certifyIssuingCa(
    await keys.generate(keySpecOf(current.issuing.key), 'issuing'),
    subject,
    { certificate: current.root.certificate, key: rootKey },
    options.issuingValidityDays ?? 1825,
    now,
  );
  const ra = await raFor(issuing, { now, keys });
  return {
    root: current.root,
    intermediates: current.intermediates,
    issuing,
    ...(ra ? { ra } : {}),
  };
}

/** Awaits every promise, then fails with the first failure: nothing is still running then. */
async function allSettled<T>(promises: readonly Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}

/**
 * Creates a root and an issuing CA (and an RA when the issuing key cannot decrypt); see the
 * module comment for the exact profiles. Subjects are checked before any key is made; the keys
 * come from `keys` (software keys made in the thread pool by default).
 */
export async function createAuthority(
  options: CreateAuthorityOptions,
  keys: KeySource = SOFTWARE_KEYS,
): Promise<CaMaterial> {
  const now = options.now ?? new Date();
  const rootName = parseRfc4514(options.rootSubject);
  const issuingName = parseRfc4514(options.issuingSubject);
  const raName = options.raSubject !== undefined ? parseRfc4514(options.raSubject) : undefined;
  const spec: AuthorityKeySpec =
    options.keyType === 'rsa'
      ? { type: 'rsa', bits: options.rsaBits ?? 2048 }
      : { type: 'ec', curve: options.curve ?? 'P-256' };
  const [rootKey, issuingKey] = (await allSettled([
    keys.generate(spec, 'root'),
    keys.generate(spec, 'issuing'),
  ])) as [PrivateKeyRef, PrivateKeyRef];

  const rootSpki = spkiOf(rootKey);
  const rootSigner = { name: rootName, key: rootKey, spki: rootSpki };
  const rootPeriod = validity(now, options.rootValidityDays ?? 3650);
  const root = await certify(rootName, rootKey, rootSigner, rootPeriod, [
    basicConstraints(true),
    keyUsage(['keyCertSign', 'cRLSign']),
    subjectKeyIdentifier(rootSpki),
  ]);

  const issuing = await certifyIssuingCa(
    issuingKey,
    issuingName,
    { certificate: root, key: rootKey },
    options.issuingValidityDays ?? 1825,
    now,
  );
  const ra = await raFor(issuing, {
    now,
    keys,
    ...(raName ? { subject: raName } : {}),
    ...(options.crlUrl !== undefined ? { crlUrl: options.crlUrl } : {}),
  });
  return {
    root: { certificate: root, key: rootKey },
    intermediates: [],
    issuing,
    ...(ra ? { ra } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Persistence

/**
 * File names in the data directory. Certificates are PEM (0644), software keys encrypted
 * PKCS#8 PEM (0600). A key held by a token is recorded instead by a `*.key-ref` file (0600):
 * one line, the {@link ExternalKey.label} (for a PKCS#11 key its RFC 7512 URI, never a PIN).
 * A part has either its `.key` or its `.key-ref`, never both.
 */
export const AUTHORITY_FILES = {
  rootCertificate: 'root.crt',
  rootKey: 'root.key',
  rootKeyRef: 'root.key-ref',
  intermediates: 'intermediates.crt',
  issuingCertificate: 'issuing.crt',
  issuingKey: 'issuing.key',
  issuingKeyRef: 'issuing.key-ref',
  raCertificate: 'ra.crt',
  raKey: 'ra.key',
  raKeyRef: 'ra.key-ref',
} as const;

const toPem = (c: Certificate): string => encodePem('CERTIFICATE', c.der);

function encryptedPem(key: KeyObject, passphrase: string): string {
  // PBES2: PBKDF2-HMAC-SHA256 + AES-256-CBC (OpenSSL 3's defaults for an encrypted PKCS#8).
  return key.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }) as string;
}

/** True when any key of the material is a software key (and so needs the passphrase). */
export function hasSoftwareKeys(material: CaMaterial): boolean {
  return [material.root.key, material.issuing.key, material.ra?.key].some(
    (k) => k !== undefined && !isExternalKey(k),
  );
}

/**
 * Saves the material into `dir` (created 0700 if missing). Each file is replaced atomically;
 * files of parts the material lacks (root key, RA, intermediates) are removed so a later load
 * cannot pick up stale ones. Software keys are encrypted with the passphrase, which must then
 * not be empty (a passphrase function is called only in that case); keys held by a token are
 * saved as references (see {@link AUTHORITY_FILES}).
 */
export async function saveAuthority(
  dir: string,
  material: CaMaterial,
  passphrase: string | (() => Promise<string>),
): Promise<void> {
  let pass: string | undefined;
  if (hasSoftwareKeys(material)) {
    pass = typeof passphrase === 'string' ? passphrase : await passphrase();
    if (pass.length === 0)
      throw new PkiError('ERR_PKI_INVALID_ARGUMENT', 'the CA key passphrase must not be empty');
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const F = AUTHORITY_FILES;
  const put = (name: string, data: string, mode: number) =>
    writeAtomicFile(join(dir, name), data, mode);
  const drop = (name: string) => rm(join(dir, name), { force: true });
  /** Writes a key as encrypted PKCS#8 or as a reference, and removes the other form. */
  const putKey = async (file: string, refFile: string, key: PrivateKeyRef | undefined) => {
    if (key === undefined) {
      await drop(file);
      await drop(refFile);
    } else if (isExternalKey(key)) {
      await put(refFile, `${keyReference(key)}\n`, 0o600);
      await drop(file);
    } else {
      await put(file, encryptedPem(key, pass!), 0o600);
      await drop(refFile);
    }
  };
  await put(F.rootCertificate, toPem(material.root.certificate), 0o644);
  await putKey(F.rootKey, F.rootKeyRef, material.root.key);
  await (material.intermediates.length
    ? put(F.intermediates, material.intermediates.map(toPem).join(''), 0o644)
    : drop(F.intermediates));
  await putKey(F.issuingKey, F.issuingKeyRef, material.issuing.key);
  if (material.ra) await put(F.raCertificate, toPem(material.ra.certificate), 0o644);
  else await drop(F.raCertificate);
  await putKey(F.raKey, F.raKeyRef, material.ra?.key);
  // Last: the issuing certificate is what marks a directory as holding a CA, so a first save
  // cut short (a crash, a full disk, Ctrl-C) leaves one that reads as having none, and the
  // next start makes the CA again instead of failing on a missing key.
  await put(F.issuingCertificate, toPem(material.issuing.certificate), 0o644);
}

/** The one-line reference saved for a token-held key: its label, checked to be one line. */
function keyReference(key: ExternalKey): string {
  if (!key.label || /[\r\n]/.test(key.label))
    throw new PkiError(
      'ERR_PKI_INVALID_ARGUMENT',
      'a token key needs a one-line label to be saved',
    );
  return key.label;
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

function certsOf(pem: string): Certificate[] {
  return decodePem(pem)
    .filter((b) => b.label === 'CERTIFICATE')
    .map((b) => parseCertificate(b.der));
}

export interface LoadAuthorityOptions {
  /**
   * Opens a key held by a token from the reference {@link saveAuthority} wrote (its
   * `ExternalKey.label`). Without it, a CA whose keys are in a token does not load
   * (`ERR_PKI_INVALID_ARGUMENT` naming the reference).
   */
  readonly openKey?: (reference: string, what: string) => Promise<PrivateKeyRef>;
  /**
   * Open token-held keys on first use rather than now ({@link deferredKey}): each is then a
   * stand-in with its certificate's public key, and `openKey` runs (and the key is matched
   * against the certificate) when it first signs or decrypts. For a process that may never
   * sign, such as an admin command that only reads the store.
   */
  readonly defer?: boolean;
}

/**
 * Loads one certificate and its key: software (`keyPem`, decrypted with the passphrase) or a
 * token's (`keyRef`, opened by `openKey`). Either way the key must match the certificate.
 */
async function loadPair(
  certPem: string,
  key: { pem: string } | { ref: string },
  passphrase: () => Promise<string>,
  options: LoadAuthorityOptions,
  what: string,
): Promise<CaKeyPair> {
  const certificate = certsOf(certPem)[0];
  if (!certificate) throw new PkiError('ERR_PKI_MALFORMED', `${what}: no certificate`);
  let pair: { readonly key: PrivateKeyRef; readonly spki: Uint8Array };
  if ('pem' in key) {
    pair = parsePrivateKeyPem(key.pem, await passphrase()); // wrong: ERR_PKI_BAD_PASSWORD
  } else {
    if (!options.openKey)
      throw new PkiError(
        'ERR_PKI_INVALID_ARGUMENT',
        `${what}: the key is held by a token (${key.ref}), and no way to open it was given`,
      );
    const { openKey } = options;
    if (options.defer)
      return {
        certificate,
        key: deferredKey(key.ref, publicKeyFromSpki(certificate.spki), () =>
          openKey(key.ref, what),
        ),
      };
    const ref = await openKey(key.ref, what);
    pair = { key: ref, spki: spkiOf(ref) };
  }
  if (!keyMatchesCertificate(pair, certificate))
    throw new PkiError(
      'ERR_PKI_INVALID_ARGUMENT',
      `${what}: the key does not match the certificate`,
    );
  return { certificate, key: pair.key };
}

/**
 * Loads what {@link saveAuthority} wrote. A wrong passphrase is `ERR_PKI_BAD_PASSWORD`; a key
 * that does not match its certificate `ERR_PKI_INVALID_ARGUMENT`; a missing issuing or root
 * file is the fs `ENOENT` error naming the path. The passphrase (a function is called only
 * when a software key is read) is not needed for a CA whose keys are all in a token; errors
 * opening those are `options.openKey`'s own.
 */
export async function loadAuthority(
  dir: string,
  passphrase: string | (() => Promise<string>),
  options: LoadAuthorityOptions = {},
): Promise<CaMaterial> {
  const F = AUTHORITY_FILES;
  let pass: Promise<string> | undefined;
  const getPass = () =>
    (pass ??= typeof passphrase === 'string' ? Promise.resolve(passphrase) : passphrase());
  const read = (name: string) => readFile(join(dir, name), 'utf8');
  /** The saved key of a part: its PEM, its reference, or nothing. */
  const keyOf = async (file: string, refFile: string) => {
    const pem = await readOptional(join(dir, file));
    if (pem) return { pem };
    const ref = (await readOptional(join(dir, refFile)))?.trim();
    return ref ? { ref } : undefined;
  };
  const issuingKey = await keyOf(F.issuingKey, F.issuingKeyRef);
  if (!issuingKey)
    throw Object.assign(new Error(`no issuing CA key in ${dir}`), {
      code: 'ENOENT',
      path: join(dir, F.issuingKey),
    });
  const issuing = await loadPair(
    await read(F.issuingCertificate),
    issuingKey,
    getPass,
    options,
    'issuing CA',
  );
  const rootCertPem = await read(F.rootCertificate);
  const rootKey = await keyOf(F.rootKey, F.rootKeyRef);
  let root: CaMaterial['root'];
  if (rootKey) root = await loadPair(rootCertPem, rootKey, getPass, options, 'root CA');
  else {
    const certificate = certsOf(rootCertPem)[0];
    if (!certificate) throw new PkiError('ERR_PKI_MALFORMED', 'root CA: no certificate');
    root = { certificate };
  }
  const intermediates = certsOf((await readOptional(join(dir, F.intermediates))) ?? '');
  const raCert = await readOptional(join(dir, F.raCertificate));
  const raKey = await keyOf(F.raKey, F.raKeyRef);
  const ra = raCert && raKey ? await loadPair(raCert, raKey, getPass, options, 'RA') : undefined;
  return { root, intermediates, issuing, ...(ra ? { ra } : {}) };
}

// ---------------------------------------------------------------------------------------------
// Import

function isCaCertificate(cert: Certificate): boolean {
  return basicConstraintsOf(cert)?.ca === true;
}

/**
 * True when an issuing certificate can serve as SCEP's encryption certificate itself: an RSA
 * key whose keyUsage, if any, has keyEncipherment and digitalSignature. A CA we create gets
 * keyEncipherment exactly when its key is RSA ({@link certifyIssuingCa}).
 */
function canDecrypt(cert: Certificate): boolean {
  if (cert.publicKeyAlgorithm !== ALG.rsaEncryption) return false;
  const ku = keyUsageOf(cert);
  return !ku || (ku.includes('keyEncipherment') && ku.includes('digitalSignature'));
}

/**
 * Imports an existing CA from a PFX (PKCS#12) or PEM holding its key and certificate(s).
 *
 * - The certificate matching a private key becomes the issuing CA. It must be a CA
 *   (basicConstraints cA TRUE, RFC 5280 §4.2.1.9) and, when keyUsage is present, have
 *   keyCertSign (§4.2.1.3); otherwise `ERR_PKI_INVALID_ARGUMENT` says which.
 * - Issuers are followed upward through the file's other certificates (subject = issuer and
 *   signature verifies) to a self-signed root; a self-signed issuing CA is its own root (and
 *   then `root.key` is its key). A chain that stops before a self-signed certificate is
 *   `ERR_PKI_INVALID_ARGUMENT` ("include the root").
 * - When the issuing certificate cannot be the SCEP encryption certificate (not RSA, or a
 *   keyUsage without digitalSignature + keyEncipherment, like micromdm 2.1.0's CA), an RA
 *   certificate is created as in {@link createAuthority}.
 * - Only once all of that holds is the issuing key handed to `options.keys` (a token source
 *   imports it into the token) and the RA key made there: a file refused leaves no key behind.
 * Password errors are `readPki`'s (`ERR_PKI_PASSWORD_REQUIRED`, `ERR_PKI_BAD_PASSWORD`, …).
 */
export async function importAuthority(
  bytes: Uint8Array,
  password?: string,
  options: { readonly now?: Date; readonly crlUrl?: string; readonly keys?: KeySource } = {},
): Promise<CaMaterial> {
  const contents = await readPki(bytes, { password });
  if (contents.keys.length === 0)
    throw new PkiError('ERR_PKI_INVALID_ARGUMENT', 'the file holds no private key');
  let found: { certificate: Certificate; key: KeyObject } | undefined;
  let notCa: Certificate | undefined;
  for (const key of contents.keys) {
    const cert = contents.certificates.find((c) => keyMatchesCertificate(key, c));
    if (!cert) continue;
    if (!isCaCertificate(cert)) {
      notCa = cert;
      continue;
    }
    found = { certificate: cert, key: key.key };
    break;
  }
  if (!found) {
    if (notCa) {
      throw new PkiError(
        'ERR_PKI_INVALID_ARGUMENT',
        `"${formatName(notCa.subject)}" is not a CA certificate (basicConstraints cA is not set)`,
      );
    }
    throw new PkiError('ERR_PKI_INVALID_ARGUMENT', 'no certificate matches the private key');
  }
  const ku = keyUsageOf(found.certificate);
  if (ku && !ku.includes('keyCertSign')) {
    throw new PkiError(
      'ERR_PKI_INVALID_ARGUMENT',
      `"${formatName(found.certificate.subject)}" may not sign certificates (keyUsage lacks keyCertSign)`,
    );
  }

  const intermediates: Certificate[] = [];
  let top = found.certificate;
  while (!isSelfIssued(top)) {
    const child = top;
    const parent = contents.certificates.find(
      (c) =>
        c !== child &&
        !intermediates.includes(c) &&
        namesEqual(c.subject, child.issuer) &&
        verifySignature(child, c.spki),
    );
    if (!parent) {
      throw new PkiError(
        'ERR_PKI_INVALID_ARGUMENT',
        `the issuer "${formatName(child.issuer)}" of "${formatName(child.subject)}" is not in the file: include the chain up to the root`,
      );
    }
    if (!isSelfIssued(parent)) intermediates.push(parent);
    top = parent;
  }
  const keys = options.keys ?? SOFTWARE_KEYS;
  const issuing: CaKeyPair = {
    certificate: found.certificate,
    key: await keys.adopt(found.key, 'issuing'),
  };
  const root =
    top === issuing.certificate ? { certificate: top, key: issuing.key } : { certificate: top };
  const ra = await raFor(issuing, {
    keys,
    ...(options.now ? { now: options.now } : {}),
    ...(options.crlUrl !== undefined ? { crlUrl: options.crlUrl } : {}),
  });
  return { root, intermediates, issuing, ...(ra ? { ra } : {}) };
}
