/**
 * Test helpers over a running server's context: what an administrator would do with
 * `certpost challenge create`, done in-process (through the same admin operation) so tests
 * need not spawn the CLI, and certificates issued (or made with an escrowed key) to act on.
 */
import { generateKeyPairSync } from 'node:crypto';
import { parseRfc4514 } from '../ca/name.ts';
import { buildCsr, parseCsr } from '../pki/csr.ts';
import { createChallenge } from './admin-ops.ts';
import type { ServerContext } from './context.ts';
import { issueIdentity } from './pfx-identity.ts';

/** Creates a one-time challenge for `profile` (10 minutes) and returns its secret. */
export async function oneTimeChallenge(
  context: ServerContext,
  profile: string,
  subject: string | null = null,
): Promise<string> {
  const created = await createChallenge(context, 'test', {
    profile,
    ttlMs: 600_000,
    ...(subject !== null ? { subject } : {}),
  });
  return created.challenge;
}

/**
 * Issues a certificate for `subject` under `profile` (a new P-256 key, as an administrator's
 * tool would request it) and returns its serial.
 */
export async function issuedSerial(
  context: ServerContext,
  subject: string,
  profile = 'default',
): Promise<string> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const csr = parseCsr(await buildCsr({ subject: parseRfc4514(subject), key: privateKey }));
  const outcome = await context.enrollment.issueAuthenticated(
    csr,
    context.profiles.get(profile)!,
    'test',
  );
  if (outcome.status !== 'issued') throw new Error(`not issued: ${outcome.message}`);
  return Buffer.from(outcome.certificate.serial).toString('hex');
}

/**
 * A server-made identity (RSA key, certificate, PFX) with its key in escrow, as a PFX profile
 * makes one (pfx-identity.ts); returns its serial. The CA must have an RSA issuing or RA
 * certificate: the device password is encrypted to it here.
 */
export async function escrowedSerial(context: ServerContext, subject: string): Promise<string> {
  const identity = await issueIdentity(context, {
    subject,
    subjectAltNames: [],
    issuanceProfile: context.profiles.get('default')!,
    keyBits: 2048,
    pfxFormat: 'modern',
    escrow: true,
    deviceCertificate: (context.ca.ra ?? context.ca.issuing).certificate.der,
    actor: 'test',
  });
  return identity.serial;
}
