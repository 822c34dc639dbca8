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
 */
import { generateKeyPair, type KeyObject } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { writeAtomicFile } from '../util/atomic-file.ts';
import { join } from 'node:path';
import { verifySignature } from '../pki/chain.ts';
import { PkiError } from '../pki/errors.ts';
import { keyMatchesCertificate, parsePrivateKeyPem, describePrivateKey } from '../pki/keys.ts';
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

/** A certificate with its private key. */
export interface CaKeyPair {
  readonly certificate: Certificate;
  readonly key: KeyObject;
}

/**
 * Everything the CA signs and decrypts with. `root.key` is absent for an imported CA whose
 * file carried only the issuing key (the usual case: roots stay offline). `intermediates`
 * lists certificates between the issuing CA and the root, the issuing CA's issuer first
 * (empty for a created authority). `ra` exists when the issuing CA cannot serve as the SCEP
 * encryption certificate (see the module comment).
 */
export interface CaMaterial {
  readonly root: { readonly certificate: Certificate; readonly key?: KeyObject };
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

const spkiOf = (key: KeyObject): Uint8Array => describePrivateKey(key).spki;

function validity(now: Date, days: number, cap?: Date): { notBefore: Date; notAfter: Date } {
  const t = Math.floor(now.getTime() / 1000) * 1000;
  const notAfter = new Date(t + days * DAY_MS);
  return { notBefore: new Date(t - BACKDATE_MS), notAfter: cap && notAfter > cap ? cap : notAfter };
}

/** Signs a certificate for `subjectKey` under `issuer` and parses it back. */
async function certify(
  subject: Uint8Array,
  subjectKey: KeyObject,
  issuer: { name: Uint8Array; key: KeyObject; spki: Uint8Array },
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
 * Makes the RSA-2048 RA/decrypter certificate for an issuing CA (module comment): keyUsage
 * digitalSignature + keyEncipherment (critical), no EKU, SKI, AKI, CRL DP when given.
 */
export async function createRaCertificate(
  issuing: CaKeyPair,
  options: { readonly subject?: Uint8Array; readonly crlUrl?: string; readonly now?: Date } = {},
): Promise<CaKeyPair> {
  const key = await generate({ type: 'rsa', bits: 2048 });
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
  key: KeyObject,
  subject: Uint8Array,
  root: { readonly certificate: Certificate; readonly key: KeyObject },
  days: number,
  now: Date,
): Promise<CaKeyPair> {
  const spki = spkiOf(key);
  const usage: KeyUsageName[] = ['digitalSignature', 'keyCertSign', 'cRLSign'];
  if (key.asymmetricKeyType === 'rsa') usage.push('keyEncipherment');
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
 * unless another is given; an RA certificate when the key is not RSA. Needs the root key: an
 * imported CA without it cannot roll over here.
 */
export async function createNextAuthority(
  current: CaMaterial,
  options: {
    readonly issuingSubject?: string;
    readonly issuingValidityDays?: number;
    readonly now?: Date;
  } = {},
): Promise<CaMaterial> {
  const rootKey = current.root.key;
  if (!rootKey)
    throw new PkiError(
      'ERR_PKI_INVALID_ARGUMENT',
      'rolling the CA over needs the root key, which this data directory does not hold',
    );
  const now = options.now ?? new Date();
  const old = current.issuing.key;
  const spec =
    old.asymmetricKeyType === 'rsa'
      ? ({ type: 'rsa', bits: old.asymmetricKeyDetails?.modulusLength ?? 2048 } as const)
      : ({
          type: 'ec',
          curve: old.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'P-384' : 'P-256',
        } as const);
  const issuing = await certifyIssuingCa(
    await generate(spec),
    options.issuingSubject !== undefined
      ? parseRfc4514(options.issuingSubject)
      : current.issuing.certificate.subject.der,
    { certificate: current.root.certificate, key: rootKey },
    options.issuingValidityDays ?? 1825,
    now,
  );
  const ra = spec.type === 'rsa' ? undefined : await createRaCertificate(issuing, { now });
  return {
    root: current.root,
    intermediates: current.intermediates,
    issuing,
    ...(ra ? { ra } : {}),
  };
}

/**
 * Creates a root and an issuing CA (and an RA for an EC issuing key); see the module comment
 * for the exact profiles. Keys are generated in the thread pool.
 */
export async function createAuthority(options: CreateAuthorityOptions): Promise<CaMaterial> {
  const now = options.now ?? new Date();
  const spec =
    options.keyType === 'rsa'
      ? ({ type: 'rsa', bits: options.rsaBits ?? 2048 } as const)
      : ({ type: 'ec', curve: options.curve ?? 'P-256' } as const);
  const [rootKey, issuingKey] = await Promise.all([generate(spec), generate(spec)]);

  const rootName = parseRfc4514(options.rootSubject);
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
    parseRfc4514(options.issuingSubject),
    { certificate: root, key: rootKey },
    options.issuingValidityDays ?? 1825,
    now,
  );
  const ra =
    options.keyType === 'rsa'
      ? undefined
      : await createRaCertificate(issuing, {
          now,
          ...(options.raSubject !== undefined ? { subject: parseRfc4514(options.raSubject) } : {}),
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

/** File names in the data directory. Certificates are PEM (0644), keys encrypted PKCS#8 PEM (0600). */
export const AUTHORITY_FILES = {
  rootCertificate: 'root.crt',
  rootKey: 'root.key',
  intermediates: 'intermediates.crt',
  issuingCertificate: 'issuing.crt',
  issuingKey: 'issuing.key',
  raCertificate: 'ra.crt',
  raKey: 'ra.key',
} as const;

const toPem = (c: Certificate): string => encodePem('CERTIFICATE', c.der);

function encryptedPem(key: KeyObject, passphrase: string): string {
  // PBES2: PBKDF2-HMAC-SHA256 + AES-256-CBC (OpenSSL 3's defaults for an encrypted PKCS#8).
  return key.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }) as string;
}

/**
 * Saves the material into `dir` (created 0700 if missing). Each file is replaced atomically;
 * files of parts the material lacks (root key, RA, intermediates) are removed so a later load
 * cannot pick up stale ones. The passphrase must not be empty.
 */
export async function saveAuthority(
  dir: string,
  material: CaMaterial,
  passphrase: string,
): Promise<void> {
  if (passphrase.length === 0)
    throw new PkiError('ERR_PKI_INVALID_ARGUMENT', 'the CA key passphrase must not be empty');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const F = AUTHORITY_FILES;
  const put = (name: string, data: string, mode: number) =>
    writeAtomicFile(join(dir, name), data, mode);
  const drop = (name: string) => rm(join(dir, name), { force: true });
  await put(F.rootCertificate, toPem(material.root.certificate), 0o644);
  await (material.root.key
    ? put(F.rootKey, encryptedPem(material.root.key, passphrase), 0o600)
    : drop(F.rootKey));
  await (material.intermediates.length
    ? put(F.intermediates, material.intermediates.map(toPem).join(''), 0o644)
    : drop(F.intermediates));
  await put(F.issuingCertificate, toPem(material.issuing.certificate), 0o644);
  await put(F.issuingKey, encryptedPem(material.issuing.key, passphrase), 0o600);
  if (material.ra) {
    await put(F.raCertificate, toPem(material.ra.certificate), 0o644);
    await put(F.raKey, encryptedPem(material.ra.key, passphrase), 0o600);
  } else {
    await drop(F.raCertificate);
    await drop(F.raKey);
  }
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

function loadPair(certPem: string, keyPem: string, passphrase: string, what: string): CaKeyPair {
  const certificate = certsOf(certPem)[0];
  if (!certificate) throw new PkiError('ERR_PKI_MALFORMED', `${what}: no certificate`);
  const key = parsePrivateKeyPem(keyPem, passphrase); // wrong passphrase: ERR_PKI_BAD_PASSWORD
  if (!keyMatchesCertificate(key, certificate))
    throw new PkiError(
      'ERR_PKI_INVALID_ARGUMENT',
      `${what}: the key does not match the certificate`,
    );
  return { certificate, key: key.key };
}

/**
 * Loads what {@link saveAuthority} wrote. A wrong passphrase is `ERR_PKI_BAD_PASSWORD`; a key
 * that does not match its certificate `ERR_PKI_INVALID_ARGUMENT`; a missing issuing or root
 * file is the fs `ENOENT` error naming the path.
 */
export async function loadAuthority(dir: string, passphrase: string): Promise<CaMaterial> {
  const F = AUTHORITY_FILES;
  const read = (name: string) => readFile(join(dir, name), 'utf8');
  const issuing = loadPair(
    await read(F.issuingCertificate),
    await read(F.issuingKey),
    passphrase,
    'issuing CA',
  );
  const rootCertPem = await read(F.rootCertificate);
  const rootKeyPem = await readOptional(join(dir, F.rootKey));
  let root: CaMaterial['root'];
  if (rootKeyPem) root = loadPair(rootCertPem, rootKeyPem, passphrase, 'root CA');
  else {
    const certificate = certsOf(rootCertPem)[0];
    if (!certificate) throw new PkiError('ERR_PKI_MALFORMED', 'root CA: no certificate');
    root = { certificate };
  }
  const intermediates = certsOf((await readOptional(join(dir, F.intermediates))) ?? '');
  const raCert = await readOptional(join(dir, F.raCertificate));
  const raKey = await readOptional(join(dir, F.raKey));
  const ra = raCert && raKey ? loadPair(raCert, raKey, passphrase, 'RA') : undefined;
  return { root, intermediates, issuing, ...(ra ? { ra } : {}) };
}

// ---------------------------------------------------------------------------------------------
// Import

function isCaCertificate(cert: Certificate): boolean {
  return basicConstraintsOf(cert)?.ca === true;
}

/** True when the certificate can serve as SCEP's encryption certificate itself. */
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
 * Password errors are `readPki`'s (`ERR_PKI_PASSWORD_REQUIRED`, `ERR_PKI_BAD_PASSWORD`, …).
 */
export async function importAuthority(
  bytes: Uint8Array,
  password?: string,
  options: { readonly now?: Date; readonly crlUrl?: string } = {},
): Promise<CaMaterial> {
  const contents = await readPki(bytes, { password });
  if (contents.keys.length === 0)
    throw new PkiError('ERR_PKI_INVALID_ARGUMENT', 'the file holds no private key');
  let issuing: CaKeyPair | undefined;
  let notCa: Certificate | undefined;
  for (const key of contents.keys) {
    const cert = contents.certificates.find((c) => keyMatchesCertificate(key, c));
    if (!cert) continue;
    if (!isCaCertificate(cert)) {
      notCa = cert;
      continue;
    }
    issuing = { certificate: cert, key: key.key };
    break;
  }
  if (!issuing) {
    if (notCa) {
      throw new PkiError(
        'ERR_PKI_INVALID_ARGUMENT',
        `"${formatName(notCa.subject)}" is not a CA certificate (basicConstraints cA is not set)`,
      );
    }
    throw new PkiError('ERR_PKI_INVALID_ARGUMENT', 'no certificate matches the private key');
  }
  const ku = keyUsageOf(issuing.certificate);
  if (ku && !ku.includes('keyCertSign')) {
    throw new PkiError(
      'ERR_PKI_INVALID_ARGUMENT',
      `"${formatName(issuing.certificate.subject)}" may not sign certificates (keyUsage lacks keyCertSign)`,
    );
  }

  const intermediates: Certificate[] = [];
  let top = issuing.certificate;
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
  const root =
    top === issuing.certificate ? { certificate: top, key: issuing.key } : { certificate: top };
  const ra = canDecrypt(issuing.certificate)
    ? undefined
    : await createRaCertificate(issuing, {
        ...(options.now ? { now: options.now } : {}),
        ...(options.crlUrl !== undefined ? { crlUrl: options.crlUrl } : {}),
      });
  return { root, intermediates, issuing, ...(ra ? { ra } : {}) };
}
