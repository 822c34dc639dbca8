/**
 * `certpost mail send`: mails a certificate (a serial this CA issued, or a certificate file) as
 * an attachment through the site's relay, in the format asked for or, where the site's mail
 * system blocks it, the first allowed fallback. The operation is server/mail-ops.ts's, shared
 * with the admin API; the mail settings and their flags are mail/settings.ts's, shared with
 * `certpost serve` ({@link mailOptions}).
 */
import { setting } from './settings.ts';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { Option, type Command } from 'commander';
import { MAIL_FORMAT_NAMES, type MailFormat } from '../mail/attachment.ts';
import {
  loadMailSettings,
  MAIL_SETTINGS,
  type MailSettingName,
  type MailSettings,
} from '../mail/settings.ts';
import { readPki } from '../pki/read.ts';
import type { Pkcs12Profile } from '../pki/pkcs12.ts';
import { mailCertificate, type MailSource } from '../server/mail-ops.ts';
import { dataOptions, op, parseDuration, withContext, type DataOptions } from './admin.ts';
import { readInput, readSecretFile } from './io.ts';

/** commander's property for a flag: `--smtp-password-file <file>` → `smtpPasswordFile`. */
function propertyOf(name: MailSettingName): string {
  return MAIL_SETTINGS[name].flag
    .split(' ')[0]!
    .replace(/^--/, '')
    .replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** Adds the mail settings as settings (settings.ts): flag, environment variable, file key. */
export function mailOptions(cmd: Command): Command {
  for (const s of Object.values(MAIL_SETTINGS))
    setting(cmd, s.flag, s.help, { env: s.env, kind: s.kind });
  return cmd;
}

/** The settings given to a command with {@link mailOptions}, checked; undefined without a relay. */
export async function mailSettingsOf(o: object): Promise<MailSettings | undefined> {
  const given = (name: MailSettingName) =>
    (o as Record<string, string | undefined>)[propertyOf(name)];
  const timeout = given('timeout');
  return loadMailSettings({
    url: given('url'),
    from: given('from'),
    user: given('user'),
    passwordFile: given('passwordFile'),
    caFile: given('caFile'),
    blocked: given('blocked'),
    fallbacks: given('fallbacks'),
    timeoutMs: timeout === undefined ? undefined : parseDuration(timeout),
  });
}

/** `--cert`: an existing file, else a serial number (hex); anything else is a missing file. */
async function sourceOf(cert: string): Promise<MailSource> {
  const isFile = await stat(cert).then(
    (s) => s.isFile(),
    () => false,
  );
  if (!isFile && /^[0-9A-Fa-f]{1,64}$/.test(cert)) return { serial: cert };
  const contents = await readPki(await readInput(cert), { filename: basename(cert) });
  return { certificates: contents.certificates, file: cert };
}

interface SendOptions extends DataOptions {
  to: string;
  cert: string;
  format: MailFormat;
  passwordFile?: string;
  pfxProfile?: Pkcs12Profile;
}

export function mailCommands(root: Command, out: (s: string) => void): void {
  const group = root.command('mail').description('certificates by email, through the site relay');
  mailOptions(
    dataOptions(
      group
        .command('send')
        .description(
          'mail a certificate as an attachment; a format the site blocks is replaced by an allowed one, and the mail says so',
        )
        .requiredOption('--to <address>', 'recipient, one plain address: user@example.com')
        .requiredOption(
          '--cert <serial|file>',
          'a serial number this CA issued (hex, from "certificates list": sent with its chain), or a certificate file (DER, PEM, P7B)',
        )
        .addOption(
          new Option('--format <format>', 'attachment format')
            .choices(MAIL_FORMAT_NAMES)
            .default('cer'),
        )
        .option(
          '--password-file <file>',
          'with --format pfx/p12: the PFX password, first line of this file (default: a new random one, printed once)',
        )
        .addOption(
          new Option(
            '--pfx-profile <profile>',
            'with --format pfx/p12: modern = AES-256/SHA-256 (default), compat = 3DES/SHA-1 for old Windows',
          ).choices(['modern', 'compat']),
        ),
    ),
  )
    .addHelpText(
      'after',
      `
A PFX (--format pfx or p12) is made only for a serial whose key the CA keeps (MDM PFX profiles
with escrow). Its password is never in the mail: it is printed here once (or taken from
--password-file), for you to give the recipient another way. Every sent mail is in the audit log.
Exit codes: 0 sent, 2 usage or settings, 3 no such certificate or file, 4 the relay refused the
login, 8 the relay refused the recipient or message, 10 the relay is unreachable, times out or
fails TLS.
Example:
  CERTPOST_SMTP_PASSWORD_FILE=/etc/certpost/smtp.pw certpost mail send --data ./data \\
    --smtp-url smtp://mail.contoso.com:587 --smtp-from pki@contoso.com --smtp-user certpost \\
    --mail-blocked cer --to alice@contoso.com --cert 5f3a…`,
    )
    .action(async (o: SendOptions) => {
      const settings = await mailSettingsOf(o);
      const source = await sourceOf(o.cert);
      const password =
        o.passwordFile !== undefined ? await readSecretFile(o.passwordFile) : undefined;
      await withContext(
        o,
        async (ctx) => {
          const sent = await op(() =>
            mailCertificate(ctx, 'cli', {
              to: o.to,
              source,
              format: o.format,
              ...(password !== undefined ? { password } : {}),
              ...(o.pfxProfile !== undefined ? { pfxProfile: o.pfxProfile } : {}),
            }),
          );
          if (o.json) return out(`${JSON.stringify(sent, null, 2)}\n`);
          let text = `sent ${sent.subject} to ${sent.to} as ${sent.filename}, message ${sent.messageId}\n`;
          if (sent.switched) text += `  ${sent.switched}\n`;
          if (sent.password !== undefined)
            text += `PFX password (give it to the recipient another way; it is not shown again):\n${sent.password}\n`;
          out(text);
        },
        false,
        { mail: settings },
      );
    });
}
