/**
 * Server-generated identities for MDM PFX profiles (issue 5: "PKCS", e.g. S/MIME encryption):
 * the server makes the key, issues its certificate under an issuance profile, packs both in a
 * PFX with a random password, escrows them, and gives the device the PFX with the password
 * encrypted to the device's MDM client certificate (ClientCertificateInstall
 * PFXCertPasswordEncryptionType 1: CMS EnvelopedData, base64).
 *
 * Escrow: the PFX is kept with its password encrypted (CMS) to the CA's encryption certificate
 * (the RA when there is one, else the issuing CA), so recovering a key needs the CA's private key
 * (`recoverIdentity`). The password itself is never stored or logged in the clear.
 */
import { generateKeyPair, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import type { CaMaterial } from '../ca/authority.ts';
import { subjectAltName, type GeneralNameInput } from '../ca/certificate.ts';
import type { EnrollmentService } from '../ca/enrollment.ts';
import { parseX500 } from '../ca/name.ts';
import type { IssuanceProfile } from '../ca/profile.ts';
import { buildEnvelopedData, decryptEnvelopedData } from '../pki/cms.ts';
import { buildCsr, parseCsr } from '../pki/csr.ts';
import { describePrivateKey } from '../pki/keys.ts';
import { encodePkcs12, type Pkcs12Profile } from '../pki/pkcs12.ts';
import { parseCertificate, sha1Thumbprint } from '../pki/x509.ts';
import type { CertificateStore, KeyEscrowStore } from '../store/types.ts';

const generate = promisify(generateKeyPair);

export interface IdentityRequest {
  /** X.500 subject (Windows order), already rendered for the device. */
  readonly subject: string;
  readonly subjectAltNames: readonly GeneralNameInput[];
  readonly issuanceProfile: IssuanceProfile;
  readonly keyBits: 2048 | 3072 | 4096;
  readonly pfxFormat: Pkcs12Profile;
  readonly escrow: boolean;
  /** The device's MDM client certificate (DER): the password is encrypted to it. */
  readonly deviceCertificate: Uint8Array;
  readonly actor: string;
}

export interface Identity {
  readonly pfx: Uint8Array;
  /** Base64 CMS EnvelopedData of the password, for PFXCertPassword with type 1. */
  readonly passwordForDevice: string;
  /** SHA-1 of the certificate, upper-case hex. */
  readonly thumbprint: string;
  readonly serial: string;
}

export interface IdentityDeps {
  readonly enrollment: Pick<EnrollmentService, 'issueAuthenticated'>;
  readonly store: KeyEscrowStore & Pick<CertificateStore, 'getCertificate'>;
  readonly ca: CaMaterial;
  readonly now?: () => Date;
}

/** A Windows PFX password: 24 random bytes, base64url (no character a keyboard lacks). */
export const newPfxPassword = (): string => randomBytes(24).toString('base64url');

/** UTF-16LE, as Windows encrypts a PFX password for PFXCertPasswordEncryptionType 1. */
const utf16 = (s: string) => new Uint8Array(Buffer.from(s, 'utf16le'));

/** The pair escrow envelopes go to: the RA (RSA) when the CA has one, else the issuing CA. */
function escrowHolder(ca: CaMaterial) {
  return ca.ra ?? ca.issuing;
}

/** A secret (a PFX password) sealed for the CA: CMS EnvelopedData only the CA's key opens. */
export function sealForCa(ca: CaMaterial, secret: string): Uint8Array {
  return buildEnvelopedData(utf16(secret), escrowHolder(ca).certificate, 'aes-256-cbc');
}

/** Opens what {@link sealForCa} sealed. */
export async function openSealed(ca: CaMaterial, envelope: Uint8Array): Promise<string> {
  const holder = escrowHolder(ca);
  const opened = await decryptEnvelopedData(envelope, {
    certificate: holder.certificate,
    key: holder.key,
  });
  return Buffer.from(opened.content).toString('utf16le');
}

/** The PFX password for a device: encrypted to its MDM certificate (type 1), base64. */
function passwordFor(deviceCertificate: Uint8Array, password: string): string {
  const cert = parseCertificate(deviceCertificate);
  return Buffer.from(buildEnvelopedData(utf16(password), cert, 'aes-256-cbc')).toString('base64');
}

/** An administrator's PFX (imported profile) for a device: its password re-encrypted to it. */
export async function deliverImported(
  deps: Pick<IdentityDeps, 'ca'>,
  imported: {
    readonly pfx: string;
    readonly passwordEnvelope: string;
    readonly thumbprint: string;
  },
  deviceCertificate: Uint8Array,
): Promise<Identity> {
  const password = await openSealed(deps.ca, Buffer.from(imported.passwordEnvelope, 'base64'));
  return {
    pfx: new Uint8Array(Buffer.from(imported.pfx, 'base64')),
    passwordForDevice: passwordFor(deviceCertificate, password),
    thumbprint: imported.thumbprint,
    serial: '',
  };
}

/**
 * Makes, issues, packs and (optionally) escrows an identity; returns the PFX with its password
 * in the clear, for a caller that hands it to its owner (the portal shows it once). Refusals
 * throw with the reason.
 */
export async function issueIdentityWithPassword(
  deps: IdentityDeps,
  r: Omit<IdentityRequest, 'deviceCertificate'>,
): Promise<Omit<Identity, 'passwordForDevice'> & { readonly password: string }> {
  const { privateKey } = await generate('rsa', { modulusLength: r.keyBits });
  const csr = await buildCsr({
    subject: parseX500(r.subject),
    key: privateKey,
    ...(r.subjectAltNames.length ? { extensions: [subjectAltName(r.subjectAltNames)] } : {}),
  });
  const outcome = await deps.enrollment.issueAuthenticated(
    parseCsr(csr),
    r.issuanceProfile,
    r.actor,
  );
  if (outcome.status !== 'issued')
    throw new Error(`the CA refused the identity: ${outcome.message}`);
  const cert = outcome.certificate;
  const password = newPfxPassword();
  const chain = [deps.ca.issuing.certificate, ...deps.ca.intermediates];
  const pfx = await encodePkcs12(
    {
      key: describePrivateKey(privateKey),
      certificates: [cert, ...chain],
      friendlyName: r.subject,
    },
    password,
    { profile: r.pfxFormat },
  );
  const serial = Buffer.from(cert.serial).toString('hex');
  if (r.escrow)
    await deps.store.escrowKey({
      serial,
      pfx,
      passwordEnvelope: sealForCa(deps.ca, password),
      createdAt: deps.now?.() ?? new Date(),
    });
  return { pfx, password, thumbprint: sha1Thumbprint(cert).toUpperCase(), serial };
}

/**
 * Makes, issues, packs and (optionally) escrows an identity for a device: the PFX password
 * travels only encrypted to the device's MDM certificate. Refusals throw with the reason.
 */
export async function issueIdentity(deps: IdentityDeps, r: IdentityRequest): Promise<Identity> {
  const { password, ...identity } = await issueIdentityWithPassword(deps, r);
  return { ...identity, passwordForDevice: passwordFor(r.deviceCertificate, password) };
}

/** An escrowed identity back: the PFX and its password (decrypted with the CA's key). */
export async function recoverIdentity(
  deps: Pick<IdentityDeps, 'store' | 'ca'>,
  serial: string,
): Promise<{ pfx: Uint8Array; password: string } | undefined> {
  const e = await deps.store.getEscrow(serial);
  if (!e) return undefined;
  return { pfx: e.pfx, password: await openSealed(deps.ca, e.passwordEnvelope) };
}
