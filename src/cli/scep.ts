/**
 * `certpost scep …`: enroll a host outside MDM (like certmonger or sscep) with any SCEP server,
 * ours or another: `scep caps`, `scep enroll`, `scep renew`. A PENDING answer is polled every
 * --retry-delay up to --retry-count times (as Windows' RetryDelay/RetryCount), with progress
 * on stderr. --cipher overrides the content cipher GetCACaps would pick. Keys are written only
 * when generated here, mode 0600, optionally encrypted.
 */
import { generateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { Command, Option } from 'commander';
import { isHsmError } from '../hsm/errors.ts';
import {
  openKeyByUri,
  openTokenByUri,
  type KeySpec as HsmKeySpec,
  type Pkcs11Token,
  type TokenKey,
} from '../hsm/pkcs11.ts';
import { parsePkcs11Uri } from '../hsm/uri.ts';
import type { EnvelopeCipher } from '../pki/cms.ts';
import { isExternalKey, type PrivateKeyRef } from '../pki/key-ref.ts';
import { exportPkcs8 } from '../pki/keys.ts';
import { encodePem } from '../pki/pem.ts';
import { readPki } from '../pki/read.ts';
import { formatName, publicKeyInfo, sha1Thumbprint, type Certificate } from '../pki/x509.ts';
import {
  createScepClient,
  fetchTransport,
  isScepClientError,
  type EnrollOptions,
  type EnrollResult,
  type ScepClient,
  type ScepClientOptions,
} from '../scep/client.ts';
import { writeAtomicFile } from '../util/atomic-file.ts';
import { parseDuration } from './admin.ts';
import { CliError, EXIT } from './exit-codes.ts';
import { pkcs11Pin, readInput } from './io.ts';

const generate = promisify(generateKeyPair);

/**
 * `--cipher` values: the GetCACaps keywords' ciphers (RFC 8894 §3.5.2: `AES` is AES-128-CBC,
 * `DES3` is 3DES). Single DES is not offered.
 */
const CIPHERS = {
  aes: 'aes-128-cbc',
  '3des': 'des-ede3-cbc',
} as const satisfies Record<string, EnvelopeCipher>;

interface EnrollCliOptions {
  subject: string;
  keyLocation: string;
  pkcs11PinFile?: string;
  challenge?: string;
  key?: string;
  keyType: 'rsa' | 'ec';
  keySize: string;
  curve: string;
  outKey?: string;
  outCert: string;
  keyPassword?: string;
  caThumbprint?: string;
  retryDelay: string;
  retryCount: string;
  cipher?: keyof typeof CIPHERS;
  json?: boolean;
}

function describe(cert: Certificate) {
  return {
    subject: formatName(cert.subject),
    issuer: formatName(cert.issuer),
    serialNumber: Buffer.from(cert.serial).toString('hex'),
    notAfter: cert.notAfter.toISOString(),
    sha1: sha1Thumbprint(cert),
  };
}

/** Tokens opened by this command, closed when it ends. */
const openTokens: Pkcs11Token[] = [];

/**
 * A key in a PKCS#11 token named by an RFC 7512 URI (`pkcs11:token=T;object=NAME?module-path=…`),
 * opened with the PIN from --pkcs11-pin-file or CERTPOST_PKCS11_PIN.
 */
async function tokenKey(uri: string, o: { pkcs11PinFile?: string | undefined }): Promise<TokenKey> {
  const pin = await pkcs11Pin(o);
  const { token, key } = await hsmErrors(() => openKeyByUri(uri, pin !== undefined ? { pin } : {}));
  openTokens.push(token);
  return key;
}

/** Runs a command body, then closes every token it opened. */
async function closingTokens<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } finally {
    await Promise.all(openTokens.splice(0).map((t) => t.close()));
  }
}

/** Token failures as CLI errors: exit 12 (PIN problems 4), one line. */
async function hsmErrors<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (isHsmError(e))
      throw new CliError(e.message, e.code.startsWith('ERR_HSM_PIN') ? EXIT.password : EXIT.token);
    throw e;
  }
}

/** Loads a private key: the first of a file (PEM, DER or PFX), or a token key by pkcs11: URI. */
async function loadKey(
  path: string,
  password?: string,
  o: { pkcs11PinFile?: string | undefined } = {},
): Promise<PrivateKeyRef> {
  if (path.startsWith('pkcs11:')) return tokenKey(path, o);
  return loadFileKey(path, password);
}

/** The first private key of a file (PEM, DER or PFX). */
async function loadFileKey(path: string, password?: string): Promise<KeyObject> {
  const contents = await readPki(await readInput(path), { filename: path, password });
  const key = contents.keys[0];
  if (!key) throw new CliError(`${path} holds no private key`, EXIT.input);
  return key.key;
}

/**
 * A new key of the asked type, in software, or generated inside a PKCS#11 token when
 * `--key-location` is a pkcs11: URI (the key never leaves it, as Windows' KeyLocation TPM).
 */
async function newKey(o: EnrollCliOptions): Promise<PrivateKeyRef> {
  const bits = Number(o.keySize);
  if (o.keyType === 'rsa' && ![2048, 3072, 4096].includes(bits))
    throw new CliError('--key-size must be 2048, 3072 or 4096', EXIT.usage);
  if (o.keyLocation.startsWith('pkcs11:')) {
    const uri = parsePkcs11Uri(o.keyLocation);
    if (uri.object === undefined)
      throw new CliError('--key-location needs the key`s label: pkcs11:…;object=NAME', EXIT.usage);
    const pin = await pkcs11Pin(o);
    const token = await hsmErrors(() => openTokenByUri(uri, pin !== undefined ? { pin } : {}));
    openTokens.push(token);
    const spec: HsmKeySpec =
      o.keyType === 'ec'
        ? { type: 'ec', curve: o.curve as 'P-256' | 'P-384' }
        : { type: 'rsa', bits: bits as 2048 | 3072 | 4096 };
    return hsmErrors(() => token.generateKey(spec, { label: uri.object! }));
  }
  if (o.keyLocation !== 'file')
    throw new CliError('--key-location is "file" or a pkcs11: URI', EXIT.usage);
  if (o.keyType === 'ec') return (await generate('ec', { namedCurve: o.curve })).privateKey;
  return (await generate('rsa', { modulusLength: bits })).privateKey;
}

/** Polls a PENDING enrollment until issued, refused, or out of retries. */
async function waitForIssue(
  client: ScepClient,
  first: EnrollResult,
  poll: Omit<Parameters<ScepClient['poll']>[0], 'transactionId' | 'signer'>,
  delayMs: number,
  count: number,
): Promise<EnrollResult> {
  let result = first;
  for (let attempt = 1; result.status === 'pending' && attempt <= count; attempt++) {
    process.stderr.write(
      `certpost: request ${result.transactionId} is pending approval; asking again in ${Math.round(delayMs / 1000)} s (${attempt}/${count})\n`,
    );
    await new Promise((r) => setTimeout(r, delayMs));
    result = await client.poll({
      ...poll,
      transactionId: result.transactionId,
      signer: result.signer,
    });
  }
  return result;
}

/** Writes the outcome: files on success, one line or JSON, and the exit code. */
async function finish(
  result: EnrollResult,
  key: PrivateKeyRef,
  o: {
    outCert: string;
    outKey?: string | undefined;
    keyPassword?: string | undefined;
    json?: boolean | undefined;
  },
  out: (s: string) => void,
): Promise<void> {
  if (result.status === 'failed') {
    throw new CliError(
      `the CA refused the request: ${result.failInfo}${result.failInfoText ? ` (${result.failInfoText})` : ''}`,
      EXIT.refused,
    );
  }
  if (result.status === 'pending') {
    if (o.json)
      out(`${JSON.stringify({ status: 'pending', transactionId: result.transactionId })}\n`);
    throw new CliError(
      `still pending after the last retry (transaction ${result.transactionId}); run the command again later`,
      EXIT.pending,
    );
  }
  if (o.outKey && !isExternalKey(key)) {
    const der = exportPkcs8({ key }, o.keyPassword);
    await writeAtomicFile(
      o.outKey,
      encodePem(o.keyPassword === undefined ? 'PRIVATE KEY' : 'ENCRYPTED PRIVATE KEY', der),
      0o600,
    );
  }
  await writeAtomicFile(o.outCert, encodePem('CERTIFICATE', result.certificate.der));
  const info = describe(result.certificate);
  out(
    o.json
      ? `${JSON.stringify({ status: 'issued', transactionId: result.transactionId, certificate: info }, null, 2)}\n`
      : `issued ${info.subject}, serial ${info.serialNumber}, valid until ${info.notAfter}\n  certificate: ${o.outCert}${isExternalKey(key) ? `\n  key: ${key.label} (in the token)` : o.outKey ? `\n  key: ${o.outKey}` : ''}\n`,
  );
}

/**
 * Enrolls, polls while the request is pending, and writes the outcome (files, one line or
 * JSON, exit code): the common tail of `scep enroll` and `scep renew`. Transport failures
 * become CLI errors.
 */
async function enrollAndWrite(
  url: string,
  o: EnrollCliOptions,
  request: Pick<EnrollOptions, 'subject' | 'key' | 'renewWith'>,
  /** Where a key made for this request is written (none: the key is the caller's or a token's). */
  outKey: string | undefined,
  out: (s: string) => void,
): Promise<void> {
  const r = retries(o);
  const full: EnrollOptions = {
    ...request,
    ...(o.challenge ? { challenge: o.challenge } : {}),
    ...(o.caThumbprint ? { caThumbprint: o.caThumbprint } : {}),
  };
  const client = createScepClient(fetchTransport(url), clientOptionsOf(o));
  const result = await transportErrors(async () =>
    waitForIssue(client, await client.enroll(full), full, r.delayMs, r.count),
  );
  await finish(
    result,
    request.key,
    { outCert: o.outCert, outKey, keyPassword: o.keyPassword, json: o.json },
    out,
  );
}

/** The options `scep enroll` and `scep renew` share. */
function requestOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option(
        '--cipher <cipher>',
        'content cipher of the requests, used even if the server does not advertise it: aes (AES-128-CBC) or 3des (default: AES if the server advertises AES or SCEPStandard, else 3DES; never single DES)',
      ).choices(Object.keys(CIPHERS)),
    )
    .option('--retry-delay <duration>', 'wait between polls while the request is pending', '60s')
    .option('--retry-count <n>', 'polls before giving up (0: do not wait)', '30')
    .option(
      '--ca-thumbprint <sha1>',
      "refuse the server unless a certificate of its CA chain has this SHA-1 (Windows' CAThumbprint)",
    )
    .option('--json', 'print one JSON document');
}

function clientOptionsOf(o: { cipher?: keyof typeof CIPHERS | undefined }): ScepClientOptions {
  return o.cipher ? { cipher: CIPHERS[o.cipher] } : {};
}

function retries(o: { retryDelay: string; retryCount: string }): {
  delayMs: number;
  count: number;
} {
  const count = Number(o.retryCount);
  if (!Number.isInteger(count) || count < 0 || count > 1000)
    throw new CliError('--retry-count must be 0 to 1000', EXIT.usage);
  return { delayMs: parseDuration(o.retryDelay), count };
}

async function transportErrors<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (isScepClientError(e, 'ERR_SCEP_CLIENT_CA_THUMBPRINT'))
      throw new CliError(e.message, EXIT.refused);
    if (isScepClientError(e)) throw new CliError(e.message, EXIT.network);
    throw e;
  }
}

export function scepCommands(root: Command, out: (s: string) => void): void {
  const scep = root
    .command('scep')
    .description('enroll this host with a SCEP server (any RFC 8894 CA, not only certpost)');

  scep
    .command('caps')
    .description("show a SCEP server's capabilities and CA certificates")
    .argument('<url>', 'SCEP URL, e.g. http://ca.example.com/scep')
    .option('--json', 'print one JSON document')
    .action(async (url: string, o: { json?: boolean }) => {
      const client = createScepClient(fetchTransport(url));
      const [caps, certs] = await transportErrors(() =>
        Promise.all([client.capabilities(), client.caCertificates()]),
      );
      const info = { capabilities: caps, caCertificates: certs.map(describe) };
      out(
        o.json
          ? `${JSON.stringify(info, null, 2)}\n`
          : `capabilities: ${caps.join(', ')}\n${info.caCertificates.map((c) => `CA: ${c.subject}\n  SHA-1 ${c.sha1}, valid until ${c.notAfter}\n`).join('')}`,
      );
    });

  requestOptions(
    scep
      .command('enroll')
      .description(
        'generate a key (or use --key), request a certificate, wait while it is pending, write key and certificate',
      )
      .argument('<url>', 'SCEP URL')
      .requiredOption('--subject <dn>', 'subject, RFC 4514: "CN=host.example.com,O=Example"')
      .option(
        '--challenge <secret>',
        'challenge password (prefer CERTPOST_SCEP_CHALLENGE: arguments are visible to other users)',
        process.env['CERTPOST_SCEP_CHALLENGE'],
      )
      .option('--key <file>', 'use this private key instead of generating one (or a pkcs11: URI)')
      .option(
        '--key-location <where>',
        'where a generated key lives: "file" (--out-key), or a PKCS#11 token, "pkcs11:token=T;object=NAME?module-path=LIB" (generated inside, never extractable)',
        'file',
      )
      .option(
        '--pkcs11-pin-file <file>',
        'user PIN of that token (first line of the file; or CERTPOST_PKCS11_PIN)',
      )
      .addOption(
        new Option('--key-type <type>', 'type of a generated key')
          .choices(['rsa', 'ec'])
          .default('rsa'),
      )
      .option('--key-size <bits>', 'RSA key size', '2048')
      .addOption(
        new Option('--curve <curve>', 'EC curve').choices(['P-256', 'P-384']).default('P-256'),
      )
      .requiredOption('--out-cert <file>', 'where to write the certificate (PEM)')
      .option('--out-key <file>', 'where to write a generated key (PEM PKCS#8, mode 0600)')
      .option(
        '--key-password <password>',
        'password of --key, or encryption of a generated key (PBES2 AES-256)',
      ),
  ).action((url: string, o: EnrollCliOptions) =>
    closingTokens(async () => {
      retries(o); // refuse bad --retry-* before any key is made
      const inToken = o.keyLocation.startsWith('pkcs11:');
      if (!o.key && !o.outKey && !inToken)
        throw new CliError(
          'a generated key must be kept: give --out-key, a pkcs11: --key-location, or bring one with --key',
          EXIT.usage,
        );
      if (inToken && o.outKey)
        throw new CliError('a key generated in a token stays there: no --out-key', EXIT.usage);
      const key = o.key ? await loadKey(o.key, o.keyPassword, o) : await newKey(o);
      await enrollAndWrite(url, o, { subject: o.subject, key }, o.key ? undefined : o.outKey, out);
    }),
  );

  requestOptions(
    scep
      .command('renew')
      .description(
        'renew a certificate with the same CA: the request is signed by the current certificate (RenewalReq)',
      )
      .argument('<url>', 'SCEP URL')
      .requiredOption('--cert <file>', 'the current certificate')
      .requiredOption('--key <file>', 'its private key (a file, or a pkcs11: URI)')
      .option(
        '--pkcs11-pin-file <file>',
        'user PIN of the token holding --key (first line of the file; or CERTPOST_PKCS11_PIN)',
      )
      .option('--new-key', 'certify a new key (written to --out-key) instead of the current one')
      .option(
        '--challenge <secret>',
        'challenge, if the CA requires one for renewals',
        process.env['CERTPOST_SCEP_CHALLENGE'],
      )
      .requiredOption('--out-cert <file>', 'where to write the new certificate')
      .option('--out-key <file>', 'with --new-key: where to write it')
      .option('--key-password <password>', 'password of --key, and encryption of a written key'),
  ).action((url: string, o: EnrollCliOptions & { cert: string; key: string; newKey?: boolean }) =>
    closingTokens(async () => {
      retries(o); // refuse bad --retry-* before any key is made
      if (o.newKey && !o.outKey) throw new CliError('--new-key needs --out-key', EXIT.usage);
      const current = (await readPki(await readInput(o.cert), { filename: o.cert }))
        .certificates[0];
      if (!current) throw new CliError(`${o.cert} holds no certificate`, EXIT.input);
      const currentKey = await loadKey(o.key, o.keyPassword, o);
      // A new key is of the current one's kind: same type and size, or same curve.
      const info = publicKeyInfo(current.spki);
      const key = o.newKey
        ? await newKey({
            ...o,
            keyType: info.type === 'ec' ? 'ec' : 'rsa',
            keySize: String(info.bits ?? 2048),
            curve: info.curve ?? 'P-256',
            keyLocation: 'file',
          })
        : currentKey;
      await enrollAndWrite(
        url,
        o,
        { subject: current.subject.der, key, renewWith: { certificate: current, key: currentKey } },
        o.newKey ? o.outKey : undefined,
        out,
      );
    }),
  );
}
