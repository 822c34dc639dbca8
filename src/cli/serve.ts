/**
 * `certpost serve`: the server's settings (flags, environment, configuration file: settings.ts),
 * all checked before anything starts, so a mistake is one line naming the setting and where it
 * came from, not a failure later.
 */
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import type { Command } from 'commander';
import { parseListen, serve } from '../server/serve.ts';
import { parseDuration, STORE_SETTINGS } from './admin.ts';
import { CliError, EXIT } from './exit-codes.ts';
import { pkcs11Pin } from './io.ts';
import { mailOptions, mailSettingsOf } from './mail.ts';
import { setting, sourceOf } from './settings.ts';

interface ServeFlags {
  data: string;
  listen: string;
  database?: string;
  scepChallenge?: string;
  logLevel: string;
  workers: string;
  publicUrl?: string;
  pkcs11PinFile?: string;
  tls: boolean;
  clientCertHeader?: string;
  enrollment?: 'open' | 'token';
  inventoryInterval: string;
  mdmRetry: string;
  trustProxy?: string;
}

/** Names proxy-addr (fastify's trustProxy) accepts besides addresses and CIDR ranges. */
const PROXY_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** `--trust-proxy`: addresses, CIDR ranges or proxy-addr's names, comma-separated. */
export function parseTrustProxy(text: string): string[] {
  const entries = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const e of entries) {
    const [addr, bits, extra] = e.split('/');
    const family = isIP(addr ?? '');
    const max = family === 6 ? 128 : 32;
    const okBits = bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= max);
    if (!PROXY_NAMES.has(e) && (family === 0 || !okBits || extra !== undefined))
      throw new Error(
        `"${e}" is not an address, a CIDR range (10.0.0.0/8) or one of ${[...PROXY_NAMES].join(', ')}`,
      );
  }
  if (entries.length === 0) throw new Error('names no proxy');
  return entries;
}

/** Runs `check` on a setting's value; its failure names the setting and where it came from. */
function checked<T>(cmd: Command, attribute: string, check: () => T): T {
  try {
    return check();
  } catch (e) {
    if (e instanceof CliError)
      throw new CliError(`${sourceOf(cmd, attribute)}: ${e.message}`, e.exitCode);
    throw new CliError(`${sourceOf(cmd, attribute)}: ${(e as Error).message}`, EXIT.usage);
  }
}

export function serveCommands(root: Command): void {
  const cmd = root
    .command('serve')
    .description(
      'start the certpost server (embedded defaults: SQLite and a development CA in the data directory)',
    );
  setting(cmd, '--data <dir>', 'data directory (created when missing)', STORE_SETTINGS.data[2]);
  setting(cmd, '--listen <host:port>', 'address to listen on', {
    env: 'CERTPOST_LISTEN',
    default: '127.0.0.1:8080',
  });
  setting(cmd, ...STORE_SETTINGS.database);
  setting(
    cmd,
    '--scep-challenge <secret>',
    'static SCEP challenge for the default profile (prefer the environment: arguments are visible to other users)',
    { env: 'CERTPOST_SCEP_CHALLENGE', secret: true },
  );
  setting(cmd, '--log-level <level>', 'log level; "info" writes one line per request', {
    env: 'CERTPOST_LOG_LEVEL',
    default: 'info',
    choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
  });
  setting(
    cmd,
    '--public-url <url>',
    'URL clients reach this server at; issued certificates point to <url>/crl (default: http://HOST:PORT of --listen)',
    { env: 'CERTPOST_PUBLIC_URL' },
  );
  setting(
    cmd,
    '--workers <n>',
    'server processes sharing the port and the store ("auto": one per core)',
    {
      env: 'CERTPOST_WORKERS',
      default: '1',
      kind: 'count',
    },
  );
  setting(cmd, ...STORE_SETTINGS.pkcs11PinFile);
  setting(
    cmd,
    '--tls',
    'serve HTTPS with a certificate of this CA (DATA/tls), asking clients for certificates: MDM devices authenticate with theirs',
    { env: 'CERTPOST_TLS', default: false, kind: 'boolean' },
  );
  setting(
    cmd,
    '--enrollment <mode>',
    'Windows enrollment: "token" needs a token (certpost mdm token create), "open" takes any (default: open on a loopback --listen, else token)',
    { env: 'CERTPOST_ENROLLMENT', choices: ['open', 'token'] },
  );
  setting(
    cmd,
    '--inventory-interval <duration>',
    'how often enrolled devices list their certificate stores (MDM inventory), e.g. 12h',
    { env: 'CERTPOST_INVENTORY_INTERVAL', default: '24h' },
  );
  setting(
    cmd,
    '--mdm-retry <duration>',
    'how soon a SCEP enrollment that failed on a device is sent again, with a new challenge; doubled after each failure, at most a day, 8 attempts',
    { env: 'CERTPOST_MDM_RETRY', default: '15m' },
  );
  setting(
    cmd,
    '--client-cert-header <name>',
    'behind a TLS-terminating reverse proxy: the header it forwards the client certificate in (URL-encoded PEM); only set it when the proxy overwrites that header',
    { env: 'CERTPOST_CLIENT_CERT_HEADER' },
  );
  setting(
    cmd,
    '--trust-proxy <addresses>',
    'reverse proxies whose X-Forwarded-For/-Proto to believe: addresses or CIDR ranges, comma-separated (sign-in and SCEP limits and logs then see the client)',
    { env: 'CERTPOST_TRUST_PROXY', kind: 'list' },
  );
  mailOptions(cmd)
    .addHelpText(
      'after',
      `
Settings come from the command line, else the environment, else the --config file (TOML, keys
are the long flags without dashes, e.g. listen = "0.0.0.0:8443", tls = true, workers = 2).
Windows MDM: enrollment at /EnrollmentServer/*, management at /ManagementServer/MDM.svc.
SCEP is served at http://HOST:PORT/scep (also /scep/pkiclient.exe), the CRL at /crl.
The CA keys are encrypted with CERTPOST_CA_PASSPHRASE (generated into DATA/ca/passphrase when unset),
or held by a PKCS#11 token ("certpost ca init --pkcs11 URI"): the token is opened with the PIN from
--pkcs11-pin-file, CERTPOST_PKCS11_PIN, or the pin-source of the URI recorded in DATA/ca.`,
    )
    .action(async (o: ServeFlags) => {
      // Everything is checked before anything starts.
      const mail = await mailSettingsOf(o);
      const workers = checked(cmd, 'workers', () => {
        const n = o.workers === 'auto' ? availableParallelism() : Number(o.workers);
        if (!Number.isInteger(n) || n < 1 || n > 64)
          throw new Error('must be a whole number from 1 to 64, or auto');
        return n;
      });
      checked(cmd, 'listen', () => parseListen(o.listen));
      if (o.publicUrl !== undefined)
        checked(cmd, 'publicUrl', () => {
          const u = URL.parse(o.publicUrl!);
          if (!u || !/^https?:$/.test(u.protocol) || u.search || u.hash)
            throw new Error(`"${o.publicUrl}" is not an http(s) URL without query`);
        });
      const inventoryIntervalMs = checked(cmd, 'inventoryInterval', () =>
        parseDuration(o.inventoryInterval),
      );
      const mdmRetryMs = checked(cmd, 'mdmRetry', () => parseDuration(o.mdmRetry));
      if (o.clientCertHeader !== undefined)
        checked(cmd, 'clientCertHeader', () => {
          if (!/^[A-Za-z0-9-]{1,64}$/.test(o.clientCertHeader!))
            throw new Error(`"${o.clientCertHeader}" is not a header name`);
        });
      const trustProxy =
        o.trustProxy === undefined
          ? undefined
          : checked(cmd, 'trustProxy', () => parseTrustProxy(o.trustProxy!));
      await serve({
        dataDir: o.data,
        listen: o.listen,
        database: o.database,
        staticChallenge: o.scepChallenge,
        logLevel: o.logLevel,
        publicUrl: o.publicUrl,
        workers,
        pkcs11Pin: await pkcs11Pin(o),
        tls: o.tls,
        clientCertificateHeader: o.clientCertHeader,
        enrollment: o.enrollment,
        inventoryIntervalMs,
        mdmRetryMs,
        trustProxy,
        mail,
      });
    });
}
