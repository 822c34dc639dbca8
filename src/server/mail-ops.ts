/**
 * Mailing a certificate (issue 6, "Email delivery"), once for every front end: `certpost mail
 * send` (cli/mail.ts) and `POST /api/v1/certificates/:serial/mail` (admin-api.ts). A certificate
 * this CA issued goes with its chain; a certificate from a file goes with the other certificates
 * of that file. A PFX is made only from an escrowed key (pfx-identity.ts), under a new password
 * that is returned to the caller once and never mailed, stored or logged: the message says it
 * comes separately. Every mail the relay accepted is audited (`certificate.mailed`: who, to whom,
 * which certificate, which format); a mail that was not sent leaves no record.
 */
import { buildChain } from '../pki/chain.ts';
import { keyMatchesCertificate } from '../pki/keys.ts';
import { parsePkcs12, type Pkcs12Profile } from '../pki/pkcs12.ts';
import {
  formatName,
  isCA,
  parseCertificate,
  sha1Thumbprint,
  type Certificate,
} from '../pki/x509.ts';
import type { CaMaterial } from '../ca/authority.ts';
import {
  carriesKey,
  chooseFormat,
  type AttachmentPolicy,
  type AttachmentSource,
  type MailFormat,
} from '../mail/attachment.ts';
import { MailError } from '../mail/errors.ts';
import { checkAddress, type Mailer } from '../mail/mailer.ts';
import { composeCertificateMail } from '../mail/message.ts';
import type { AuditLog, CertificateStore, KeyEscrowStore } from '../store/types.ts';
import { canonicalSerial } from '../store/types.ts';
import { AdminError } from './admin-ops.ts';
import { newPfxPassword, recoverIdentity } from './pfx-identity.ts';

/** A configured mail system: where mail goes and what it lets through. */
export interface MailDelivery {
  readonly mailer: Mailer;
  readonly policy: AttachmentPolicy;
}

export interface MailDeps {
  readonly store: Pick<CertificateStore, 'getCertificate'> & KeyEscrowStore & AuditLog;
  readonly ca: CaMaterial;
  /** Undefined when the site has no relay: every request is `ERR_MAIL_NOT_CONFIGURED`. */
  readonly mail: MailDelivery | undefined;
  readonly now?: () => Date;
}

/** What to send: a certificate this CA issued (by serial, hex), or certificates read from a file. */
export type MailSource =
  | { readonly serial: string }
  | { readonly certificates: readonly Certificate[]; readonly file: string };

export interface MailCertificateRequest {
  readonly to: string;
  readonly source: MailSource;
  /** Default `cer`; the site's policy may switch it. */
  readonly format?: MailFormat;
  /** For .pfx/.p12: the password to protect the key with; a new random one when absent. */
  readonly password?: string;
  /** For .pfx/.p12: `modern` (AES-256, default) or `compat` (3DES, older Windows). */
  readonly pfxProfile?: Pkcs12Profile;
}

export interface MailSent {
  readonly to: string;
  /** The certificate's serial when this CA issued it (hex), else null. */
  readonly serial: string | null;
  readonly subject: string;
  readonly sha1: string;
  readonly requested: MailFormat;
  /** The format attached: `requested`, unless the site blocks it. */
  readonly format: MailFormat;
  readonly filename: string;
  /** Why `format` is not `requested`, when it is not. */
  readonly switched: string | null;
  readonly messageId: string;
  readonly relay: string;
  /** The PFX password when this request generated it: shown here once, kept nowhere. */
  readonly password?: string;
}

/** Sends a certificate by mail; see the module comment. */
export async function mailCertificate(
  deps: MailDeps,
  actor: string,
  r: MailCertificateRequest,
): Promise<MailSent> {
  if (!deps.mail)
    throw new MailError(
      'ERR_MAIL_NOT_CONFIGURED',
      'start certpost with --smtp-url and --smtp-from (or CERTPOST_SMTP_URL and CERTPOST_SMTP_FROM)',
    );
  const to = checkAddress(r.to);
  const requested = r.format ?? 'cer';
  const keyed = carriesKey(requested);
  if (!keyed && (r.password !== undefined || r.pfxProfile !== undefined))
    throw new AdminError(
      'ERR_ADMIN_INVALID',
      'a PFX password or profile applies to .pfx and .p12 only',
    );
  if (r.password !== undefined && r.password === '')
    throw new AdminError('ERR_ADMIN_INVALID', 'the PFX password is empty');
  // Fail on the site's policy before any key is opened.
  chooseFormat(requested, deps.mail.policy);
  const now = deps.now?.() ?? new Date();
  const { certificate, chain, serial } = await resolve(deps, r.source);
  if (certificate.notAfter < now)
    throw new AdminError(
      'ERR_ADMIN_CONFLICT',
      `the certificate expired on ${certificate.notAfter.toISOString()}`,
    );
  let source: AttachmentSource = { certificate, chain };
  let password: string | undefined;
  if (keyed) {
    if (serial === null)
      throw new AdminError(
        'ERR_ADMIN_INVALID',
        `.${requested} carries the private key: only a certificate this CA issued with an escrowed key (by serial) can be sent so`,
      );
    password = r.password ?? newPfxPassword();
    source = {
      ...source,
      identity: {
        key: await escrowedKey(deps, serial, certificate),
        password,
        profile: r.pfxProfile ?? 'modern',
      },
    };
  }
  const mail = await composeCertificateMail({ to, requested, policy: deps.mail.policy, source });
  const sent = await deps.mail.mailer.send(mail.message);
  const attachment = mail.message.attachments[0]!;
  const sha1 = sha1Thumbprint(certificate);
  const switched = mail.switchedFrom
    ? `this site's mail system blocks .${mail.switchedFrom} attachments: sent as .${mail.format}`
    : null;
  await deps.store.appendAudit({
    at: now,
    actor,
    action: 'certificate.mailed',
    target: serial ?? sha1,
    details: {
      to,
      sha1,
      subject: formatName(certificate.subject),
      requested,
      format: mail.format,
      filename: attachment.filename,
      messageId: sent.messageId,
      relay: deps.mail.mailer.relay,
      ...(serial === null && 'file' in r.source ? { file: r.source.file } : {}),
      ...(keyed ? { keyFromEscrow: true } : {}),
    },
  });
  return {
    to,
    serial,
    subject: formatName(certificate.subject),
    sha1,
    requested,
    format: mail.format,
    filename: attachment.filename,
    switched,
    messageId: sent.messageId,
    relay: deps.mail.mailer.relay,
    ...(password !== undefined && r.password === undefined ? { password } : {}),
  };
}

/** The certificate, its CA certificates (issuer first), and its serial when this CA issued it. */
async function resolve(
  deps: MailDeps,
  source: MailSource,
): Promise<{ certificate: Certificate; chain: Certificate[]; serial: string | null }> {
  if ('serial' in source) {
    if (!/^[0-9A-Fa-f]{1,64}$/.test(source.serial))
      throw new AdminError('ERR_ADMIN_INVALID', `"${source.serial}" is not a serial number (hex)`);
    const serial = canonicalSerial(source.serial);
    const rec = await deps.store.getCertificate(serial);
    if (!rec) throw new AdminError('ERR_ADMIN_NOT_FOUND', `no certificate with serial ${serial}`);
    if (rec.revokedAt)
      throw new AdminError(
        'ERR_ADMIN_CONFLICT',
        `certificate ${serial} was revoked on ${rec.revokedAt.toISOString()}`,
      );
    const certificate = parseCertificate(rec.der);
    return { certificate, chain: chainOf(deps.ca, certificate), serial };
  }
  // The file's end-entity certificate is the one to send, its CA certificates go with it.
  const certificate = source.certificates.find((c) => !isCA(c)) ?? source.certificates[0];
  if (!certificate)
    throw new AdminError('ERR_ADMIN_INVALID', `${source.file} holds no certificate`);
  return {
    certificate,
    chain: source.certificates.filter((c) => c !== certificate),
    serial: null,
  };
}

/** The chain of a certificate this CA issued, from its issuing CA up to the root. */
function chainOf(ca: CaMaterial, certificate: Certificate): Certificate[] {
  const path = buildChain(certificate, {
    trusted: [ca.root.certificate],
    intermediates: [ca.issuing.certificate, ...ca.intermediates],
  });
  return path.chain.slice(1);
}

/** The escrowed private key of `serial`, which must belong to `certificate`. */
async function escrowedKey(deps: MailDeps, serial: string, certificate: Certificate) {
  const escrow = await recoverIdentity(deps, serial);
  if (!escrow)
    throw new AdminError(
      'ERR_ADMIN_CONFLICT',
      `no escrowed key for serial ${serial}: only keys the CA made and kept (PFX profiles with escrow) can be mailed`,
    );
  const pfx = await parsePkcs12(escrow.pfx, escrow.password);
  const key = pfx.keys.find((k) => keyMatchesCertificate(k, certificate));
  if (!key) throw new Error(`the escrow of ${serial} holds no key for its certificate`);
  return key;
}
