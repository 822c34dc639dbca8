/**
 * Test kit: a small PKI made with `openssl` in a temporary directory, for the installer tests
 * (device and CLI). Every certificate is a file `<name>.pem` (and `.der`, `.key`); the names:
 *
 * - `root` (self-signed CA), `inter` (CA below root), `alice` (EC P-256, clientAuth +
 *   emailProtection, below inter; `alice.pfx` holds her key, certificate, inter and root under
 *   {@link PFX_PASSWORD}), `bob` (like alice; his certificate only), `server` (serverAuth for
 *   `IP:127.0.0.1`, below inter);
 * - `dave` (RSA-2048) and `carol` (EC P-521, a curve SoftHSM does not import) with PFXs,
 *   below inter, for key storage;
 * - `other-root` and `stranger` below it (a chain the device does not know), `self` (a
 *   self-signed server certificate for `IP:127.0.0.1`);
 * - `brief` (below inter, valid one day: expired for a clock moved two days on).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, tempDir } from './tools.ts';

export const PFX_PASSWORD = 'pfx-Pa55 wörd';

const EXTENSIONS = `
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[person]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth,emailProtection
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
`;

export interface TestPki {
  readonly dir: string;
  /** The path of a file of the PKI (`root.pem`, `alice.pfx` …). */
  path(file: string): string;
  /** Its bytes. */
  bytes(file: string): Uint8Array;
  /** SHA-1 of a certificate as `openssl x509 -fingerprint` gives it: upper-case hex. */
  sha1(name: string): string;
  /** Runs openssl in the PKI's directory. */
  openssl(...args: string[]): Buffer;
}

const KEYS = {
  ec: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  p521: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-521'],
  rsa: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
} as const;

export interface IssueOptions {
  /** `/O=…/CN=…`; `/O=certpost tests/CN=<name>` by default. */
  readonly subject?: string;
  readonly key?: keyof typeof KEYS;
  /** 365 by default. */
  readonly days?: number;
}

/**
 * Issues certificates with `openssl` in `dir` (which gets the `ext.cnf` of the profiles `ca`,
 * `person`, `server`): `issue(name, profile, issuer)` writes `<name>.key`, `.csr`, `.pem` and
 * `.der`, signed by `<issuer>.pem`/`.key`, or self-signed when `issuer` is null.
 */
export function opensslIssuer(dir: string) {
  writeFileSync(join(dir, 'ext.cnf'), EXTENSIONS);
  const openssl = (...args: string[]) => run('openssl', args, { cwd: dir });
  let serial = 1;
  const issue = (
    name: string,
    ext: 'ca' | 'person' | 'server',
    issuer: string | null,
    o: IssueOptions = {},
  ): void => {
    openssl('genpkey', ...KEYS[o.key ?? 'ec'], '-out', `${name}.key`);
    const subject = o.subject ?? `/O=certpost tests/CN=${name}`;
    openssl('req', '-new', '-key', `${name}.key`, '-subj', subject, '-out', `${name}.csr`);
    const by = issuer
      ? ['-CA', `${issuer}.pem`, '-CAkey', `${issuer}.key`]
      : ['-signkey', `${name}.key`];
    openssl('x509', '-req', '-in', `${name}.csr`, ...by, '-sha256', '-days', String(o.days ?? 365),
      '-set_serial', String(serial++), '-extfile', 'ext.cnf', '-extensions', ext,
      '-out', `${name}.pem`); // prettier-ignore
    openssl('x509', '-in', `${name}.pem`, '-outform', 'DER', '-out', `${name}.der`);
  };
  return { openssl, issue };
}

/** Makes the PKI (about a second: most of it is RSA key generation for dave). */
export function makeTestPki(): TestPki {
  const dir = tempDir('certpost-pki-');
  const { openssl, issue } = opensslIssuer(dir);
  const pfx = (name: string) =>
    openssl('pkcs12', '-export', '-in', `${name}.pem`, '-inkey', `${name}.key`, '-certfile',
      'chain.pem', '-name', name, '-passout', `pass:${PFX_PASSWORD}`, '-out', `${name}.pfx`); // prettier-ignore
  issue('root', 'ca', null, { days: 3650 });
  issue('inter', 'ca', 'root', { days: 3650 });
  issue('alice', 'person', 'inter');
  issue('bob', 'person', 'inter');
  issue('server', 'server', 'inter');
  issue('dave', 'person', 'inter', { key: 'rsa' });
  issue('carol', 'person', 'inter', { key: 'p521' });
  issue('other-root', 'ca', null);
  issue('stranger', 'person', 'other-root');
  issue('self', 'server', null);
  issue('brief', 'person', 'inter', { days: 1 });
  writeFileSync(
    join(dir, 'chain.pem'),
    Buffer.concat([readFileSync(join(dir, 'inter.pem')), readFileSync(join(dir, 'root.pem'))]),
  );
  for (const name of ['alice', 'dave', 'carol']) pfx(name);
  return {
    dir,
    path: (file) => join(dir, file),
    bytes: (file) => new Uint8Array(readFileSync(join(dir, file))),
    sha1: (name) =>
      /=([0-9A-F:]+)/
        .exec(
          openssl('x509', '-in', `${name}.pem`, '-noout', '-fingerprint', '-sha1').toString(),
        )![1]!
        .replaceAll(':', ''),
    openssl,
  };
}
