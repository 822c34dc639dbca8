/**
 * The HTTPS listener's own certificate, issued by the server's CA: Windows requires HTTPS for
 * enrollment and management (MS-MDE2 §2.1, MS-MDM §2.1), and the device trusts our root from the
 * provisioning document, so a certificate of our CA is what it will accept.
 *
 * Kept in `DATA/tls/server.key` (0600) and `server.pem` (leaf then issuing CA). Issued again at
 * start when missing, within 30 days of expiry, issued by another CA (after a rollover), or
 * for other host names. Every issuance is recorded in the store and the audit log like any other.
 */
import { generateKeyPair, X509Certificate } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { EnrollmentService } from '../ca/enrollment.ts';
import { parseRfc4514 } from '../ca/name.ts';
import { DEFAULT_PROFILE, type IssuanceProfile } from '../ca/profile.ts';
import { buildCsr, parseCsr } from '../pki/csr.ts';
import { encodePem } from '../pki/pem.ts';
import type { Certificate } from '../pki/x509.ts';
import { writeAtomicFile } from '../util/atomic-file.ts';

const generate = promisify(generateKeyPair);
const VALIDITY_DAYS = 397; // CA/B Forum ceiling for TLS server certificates
const RENEW_BEFORE_MS = 30 * 86_400_000;
export const TLS_SERVER_PROFILE = 'tls-server';

export interface TlsMaterial {
  /** PEM private key. */
  readonly key: string;
  /** PEM chain: the server certificate, then the issuing CA. */
  readonly cert: string;
}

export interface ServerTlsOptions {
  readonly dataDir: string;
  /** The issuing CA (its certificate: a kept certificate must still chain to it). */
  readonly issuing: { readonly certificate: Certificate };
  /** DNS names and IP addresses the certificate must name (the first is the CN). */
  readonly names: readonly string[];
  readonly enrollment: Pick<EnrollmentService, 'issueAuthenticated'>;
  readonly now?: () => Date;
}

/** The issuance profile of the listener's certificate: serverAuth, these names, ~13 months. */
function tlsProfile(names: readonly string[]): IssuanceProfile {
  return {
    ...DEFAULT_PROFILE,
    name: TLS_SERVER_PROFILE,
    validityDays: VALIDITY_DAYS,
    keyUsage: ['digitalSignature'],
    extendedKeyUsage: ['1.3.6.1.5.5.7.3.1'],
    allowedKeyTypes: ['ec'],
    subject: { mode: 'fromRequest' },
    subjectAltNames: {
      allow: [],
      forced: names.map((n) => ({ type: isIP(n) ? ('ip' as const) : ('dns' as const), value: n })),
    },
    allowRenewal: false,
  };
}

/** The listener's key and chain, issued or reissued when needed. */
export async function serverTls(o: ServerTlsOptions): Promise<TlsMaterial> {
  const dir = join(o.dataDir, 'tls');
  const now = (o.now ?? (() => new Date()))();
  const existing = await readExisting(dir);
  if (existing && stillGood(existing.cert, o, now)) return existing;

  // Issued like any certificate of this CA (serial, store, audit): enrollment.ts does it.
  const { privateKey } = await generate('ec', { namedCurve: 'P-256' });
  const csr = await buildCsr({
    subject: parseRfc4514(`CN=${o.names[0] ?? 'localhost'}`),
    key: privateKey,
  });
  const outcome = await o.enrollment.issueAuthenticated(
    parseCsr(csr),
    tlsProfile(o.names),
    'server',
  );
  if (outcome.status !== 'issued')
    throw new Error(`the CA refused the server's TLS certificate: ${outcome.message}`);
  const der = outcome.certificate.der;
  const ca = o.issuing.certificate;
  const material = {
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    cert: encodePem('CERTIFICATE', der) + encodePem('CERTIFICATE', ca.der),
  };
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeAtomicFile(join(dir, 'server.key'), material.key, 0o600);
  await writeAtomicFile(join(dir, 'server.pem'), material.cert, 0o644);
  return material;
}

async function readExisting(dir: string): Promise<TlsMaterial | undefined> {
  try {
    return {
      key: await readFile(join(dir, 'server.key'), 'utf8'),
      cert: await readFile(join(dir, 'server.pem'), 'utf8'),
    };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

function stillGood(chain: string, o: ServerTlsOptions, now: Date): boolean {
  const leaf = new X509Certificate(chain);
  if (new Date(leaf.validTo).getTime() - now.getTime() < RENEW_BEFORE_MS) return false;
  if (!leaf.checkIssued(new X509Certificate(o.issuing.certificate.der))) return false;
  if (!leaf.verify(new X509Certificate(o.issuing.certificate.der).publicKey)) return false;
  return o.names.every((n) => (isIP(n) ? leaf.checkIP(n) : leaf.checkHost(n)) !== undefined);
}
