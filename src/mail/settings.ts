/**
 * A site's mail settings: the relay (URL, TLS, credentials, the CA its certificate is checked
 * against, timeouts), the sender, and the attachment policy (blocked types and fallbacks). One
 * table ({@link MAIL_SETTINGS}) names each setting's flag and environment variable; the CLI builds
 * its options from it, for `certpost mail send` and `certpost serve` alike, and
 * {@link loadMailSettings} checks them all at start, naming the flag of anything wrong.
 *
 * Relay URL: `smtp://host[:port]` (default port 25) upgrades with STARTTLS when the relay offers
 * it; `?starttls=required` refuses to go on without it. `smtps://host[:port]` (default 465) is TLS
 * from the first byte (RFC 8314 §3.3). Credentials are never part of the URL (URLs end up in
 * process lists and logs): the user comes from `--smtp-user`, the password from a file or the
 * environment, never from an argument. With credentials, STARTTLS is always required: a password
 * never crosses the network in the clear.
 */
import { readFile } from 'node:fs/promises';
import { decodePem } from '../pki/pem.ts';
import {
  DEFAULT_FALLBACKS,
  isMailFormat,
  MAIL_FORMAT_NAMES,
  type AttachmentPolicy,
  type MailFormat,
} from './attachment.ts';
import { MailError } from './errors.ts';
import { checkAddress } from './mailer.ts';

/**
 * Each setting: its command-line flag, its environment variable, what it means, and how a
 * configuration file writes it (`path`s are relative to the file, `list`s are arrays).
 */
export const MAIL_SETTINGS = {
  url: {
    kind: 'text',
    flag: '--smtp-url <url>',
    env: 'CERTPOST_SMTP_URL',
    help: 'mail relay: smtp://host[:port] (STARTTLS when offered; ?starttls=required to insist) or smtps://host[:port] (implicit TLS)',
  },
  from: {
    kind: 'text',
    flag: '--smtp-from <address>',
    env: 'CERTPOST_SMTP_FROM',
    help: 'sender of certificate mails: pki@example.com or "Name <pki@example.com>"',
  },
  user: {
    kind: 'text',
    flag: '--smtp-user <user>',
    env: 'CERTPOST_SMTP_USER',
    help: 'relay login (AUTH PLAIN/LOGIN, over TLS only)',
  },
  passwordFile: {
    kind: 'path',
    flag: '--smtp-password-file <file>',
    env: 'CERTPOST_SMTP_PASSWORD_FILE',
    help: 'relay password, first line of this file; CERTPOST_SMTP_PASSWORD may hold the password itself',
  },
  caFile: {
    kind: 'path',
    flag: '--smtp-ca-file <file>',
    env: 'CERTPOST_SMTP_CA_FILE',
    help: "PEM certificates to trust for the relay's TLS certificate, instead of the system's roots",
  },
  timeout: {
    kind: 'text',
    flag: '--smtp-timeout <duration>',
    env: 'CERTPOST_SMTP_TIMEOUT',
    help: 'how long to wait for the relay to connect and to answer each step, e.g. 30s (default)',
  },
  blocked: {
    kind: 'list',
    flag: '--mail-blocked <types>',
    env: 'CERTPOST_MAIL_BLOCKED',
    help: 'attachment types the mail system blocks, comma-separated, e.g. cer,crt',
  },
  fallbacks: {
    kind: 'list',
    flag: '--mail-fallbacks <formats>',
    env: 'CERTPOST_MAIL_FALLBACKS',
    help: `formats to send instead of a blocked one, in order (default ${DEFAULT_FALLBACKS.join(',')})`,
  },
} as const;

export type MailSettingName = keyof typeof MAIL_SETTINGS;

/** The settings as given (flags, else environment), all text; `timeout` already in ms. */
export type MailSettingsInput = {
  readonly [K in Exclude<MailSettingName, 'timeout'>]?: string | undefined;
} & { readonly timeoutMs?: number | undefined };

export interface RelaySettings {
  /** `smtp://host:port` or `smtps://host:port`: for logs and answers (no credentials in it). */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** implicit: TLS from the start; required / opportunistic: STARTTLS. */
  readonly tls: 'implicit' | 'required' | 'opportunistic';
  readonly auth?: { readonly user: string; readonly password: string };
  /** PEM certificates trusted for the relay's certificate; the system's roots when absent. */
  readonly ca?: string;
  readonly timeoutMs: number;
  readonly from: { readonly name?: string; readonly address: string };
}

export interface MailSettings {
  readonly relay: RelaySettings;
  readonly policy: AttachmentPolicy;
}

/** Default for connecting and for each answer of the relay. */
export const DEFAULT_TIMEOUT_MS = 30_000;

const flagOf = (name: MailSettingName) => MAIL_SETTINGS[name].flag.split(' ')[0]!;
const invalid = (name: MailSettingName, problem: string) =>
  new MailError('ERR_MAIL_CONFIG', `${flagOf(name)} (${MAIL_SETTINGS[name].env}): ${problem}`);

/**
 * Checks the settings and reads the files they name. Undefined when no relay is configured (and
 * nothing else is: a relay setting without `--smtp-url` is a mistake worth telling).
 * `env` supplies `CERTPOST_SMTP_PASSWORD` when no password file is given.
 */
export async function loadMailSettings(
  input: MailSettingsInput,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<MailSettings | undefined> {
  if (input.url === undefined || input.url === '') {
    const stray = (Object.keys(MAIL_SETTINGS) as MailSettingName[]).filter(
      (k) =>
        k !== 'url' && (k === 'timeout' ? input.timeoutMs !== undefined : input[k] !== undefined),
    );
    if (stray.length)
      throw new MailError(
        'ERR_MAIL_CONFIG',
        `${stray.map(flagOf).join(', ')} given without ${flagOf('url')} (${MAIL_SETTINGS.url.env})`,
      );
    return undefined;
  }
  const url = relayUrl(input.url);
  const from = sender(input.from);
  const password =
    input.passwordFile !== undefined
      ? await readSetting('passwordFile', input.passwordFile)
      : env['CERTPOST_SMTP_PASSWORD'] || undefined;
  const passwordLine = password?.replace(/\r?\n$/, '');
  if (passwordLine === '') throw invalid('passwordFile', 'the password is empty');
  if ((input.user === undefined) !== (passwordLine === undefined))
    throw invalid(
      input.user === undefined ? 'user' : 'passwordFile',
      input.user === undefined
        ? 'a relay password is given but no user'
        : `a relay user is given but no password (${flagOf('passwordFile')} or CERTPOST_SMTP_PASSWORD)`,
    );
  if (input.user !== undefined && !/^[^\p{Cc}]{1,256}$/u.test(input.user))
    throw invalid('user', 'must be 1 to 256 characters, no control characters');
  if (passwordLine !== undefined && url.tls === 'opportunistic' && url.explicit)
    throw invalid(
      'url',
      'starttls=opportunistic would send the relay password in the clear: use STARTTLS (the default with a login) or smtps://',
    );
  const tls = url.tls === 'opportunistic' && passwordLine !== undefined ? 'required' : url.tls;
  const ca = input.caFile !== undefined ? await relayCa(input.caFile) : undefined;
  const timeoutMs = input.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1000 || timeoutMs > 600_000)
    throw invalid('timeout', 'must be from 1s to 10m');
  return {
    relay: {
      url: url.display,
      host: url.host,
      port: url.port,
      tls,
      ...(input.user !== undefined && passwordLine !== undefined
        ? { auth: { user: input.user, password: passwordLine } }
        : {}),
      ...(ca !== undefined ? { ca } : {}),
      timeoutMs,
      from,
    },
    policy: attachmentPolicy(input.blocked, input.fallbacks),
  };
}

/** `cer, .CRT p7b` → `['cer', 'crt', 'p7b']`. */
const typeList = (s: string | undefined) =>
  (s ?? '')
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((t) => t.replace(/^\./, '').toLowerCase());

/** The attachment policy from the two lists (`cer,crt`; `.p7b, pem`): checked, lower case. */
export function attachmentPolicy(
  blocked: string | undefined,
  fallbacks: string | undefined,
): AttachmentPolicy {
  const types = typeList(blocked);
  const bad = types.find((t) => !/^[a-z0-9]{1,16}$/.test(t));
  if (bad !== undefined) throw invalid('blocked', `"${bad}" is not a file extension`);
  const order = fallbacks === undefined ? DEFAULT_FALLBACKS : typeList(fallbacks);
  const unknown = order.find((f) => !isMailFormat(f));
  if (unknown !== undefined)
    throw invalid('fallbacks', `"${unknown}" is not one of ${MAIL_FORMAT_NAMES.join(', ')}`);
  return { blocked: new Set(types), fallbacks: [...new Set(order as MailFormat[])] };
}

function relayUrl(text: string) {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw invalid('url', `"${text}" is not a URL (smtp://host:port or smtps://host:port)`);
  }
  if (u.protocol !== 'smtp:' && u.protocol !== 'smtps:')
    throw invalid('url', `scheme ${u.protocol} is not smtp: or smtps:`);
  // The message names the fields, never their values: the password may be among them.
  if (u.username !== '' || u.password !== '')
    throw invalid(
      'url',
      `no user or password in the URL (it is visible in process lists and logs): use ${flagOf('user')} and ${flagOf('passwordFile')}`,
    );
  if (u.hostname === '') throw invalid('url', 'no host');
  if ((u.pathname !== '' && u.pathname !== '/') || u.hash !== '')
    throw invalid('url', 'only scheme, host, port and ?starttls= are allowed');
  const params = [...u.searchParams.keys()];
  const starttls = u.searchParams.get('starttls');
  if (params.some((p) => p !== 'starttls') || params.length > 1)
    throw invalid(
      'url',
      `unknown parameter in "${u.search}" (only starttls=required|opportunistic)`,
    );
  if (
    starttls !== null &&
    (u.protocol === 'smtps:' || !['required', 'opportunistic'].includes(starttls))
  )
    throw invalid(
      'url',
      u.protocol === 'smtps:'
        ? 'smtps:// is TLS from the start: starttls= does not apply'
        : `starttls=${starttls}: use required or opportunistic`,
    );
  const implicit = u.protocol === 'smtps:';
  const port = u.port === '' ? (implicit ? 465 : 25) : Number(u.port);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  return {
    host,
    port,
    tls: implicit
      ? ('implicit' as const)
      : ((starttls ?? 'opportunistic') as 'required' | 'opportunistic'),
    explicit: starttls !== null,
    display: `${u.protocol}//${u.hostname}:${port}`,
  };
}

/** `pki@example.com` or `Name <pki@example.com>`. */
function sender(text: string | undefined): RelaySettings['from'] {
  if (text === undefined || text.trim() === '')
    throw invalid('from', 'required with a relay: the address certificate mails come from');
  const m = /^\s*(?:"?([^"<>\p{Cc}]*?)"?\s*<([^<>]+)>|([^<>\s]+))\s*$/u.exec(text);
  const address = m?.[2] ?? m?.[3];
  if (!m || address === undefined)
    throw invalid('from', `"${text}" is not pki@example.com or "Name <pki@example.com>"`);
  try {
    checkAddress(address, 'sender');
  } catch (e) {
    throw invalid('from', (e as Error).message);
  }
  const name = m[1]?.trim();
  return name ? { name, address } : { address };
}

async function readSetting(name: MailSettingName, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw invalid(
      name,
      `cannot read ${path}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (e as Error).message}`,
    );
  }
}

/** The CERTIFICATE blocks of a PEM file, or a clear error. */
async function relayCa(path: string): Promise<string> {
  const text = await readSetting('caFile', path);
  let blocks;
  try {
    blocks = decodePem(text).filter((b) => b.label === 'CERTIFICATE');
  } catch (e) {
    throw invalid('caFile', `${path}: ${(e as Error).message}`);
  }
  if (blocks.length === 0) throw invalid('caFile', `${path} holds no PEM certificate`);
  return blocks.map((b) => b.text).join('');
}
