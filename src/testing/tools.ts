/**
 * Test kit: temporary directories, free loopback ports, cleanup when the test process ends,
 * and the real external tools (openssl, certtool, pk12util, keytool, python3-cryptography,
 * micromdm's scepserver and what runs it) that tests cross-check against. A missing tool is a
 * test failure naming the Debian package to install, never a silent skip: `.ci/run` installs
 * them.
 */
import { execFileSync, type ExecFileSyncOptions } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/** Debian package that provides each external tool the tests use. */
export const TOOL_PACKAGES = {
  openssl: 'openssl',
  certtool: 'gnutls-bin',
  pk12util: 'libnss3-tools',
  certutil: 'libnss3-tools',
  keytool: 'default-jre-headless',
  '/usr/bin/python3': 'python3-cryptography',
  scepserver: 'scep',
  socat: 'socat',
  unshare: 'util-linux',
  ip: 'iproute2',
  ss: 'iproute2',
} as const;
export type Tool = keyof typeof TOOL_PACKAGES;

const dirs: string[] = [];
process.on('exit', () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A fresh directory removed when the test process exits. */
export function tempDir(prefix = 'certpost-test-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

const cleanups = new Set<() => void>();
let hooked = false;

/**
 * Runs `cleanup` (synchronous: kill a server, remove its files) when the test process ends,
 * however it ends short of SIGKILL: normal exit, an uncaught error, SIGINT or SIGTERM. Returns
 * the function that unregisters it, for a server stopped in time.
 */
export function atProcessEnd(cleanup: () => void): () => void {
  if (!hooked) {
    hooked = true;
    const all = () => {
      for (const c of cleanups) c();
    };
    process.on('exit', all);
    for (const signal of ['SIGINT', 'SIGTERM'] as const)
      process.once(signal, () => {
        all();
        process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
      });
  }
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}

/** A port free on 127.0.0.1 now: bind port 0, read it, release it. */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Throws, naming the Debian packages, unless every tool is an executable on PATH: for tools
 * started asynchronously or from a shell, where a missing one would otherwise show up as a
 * bare ENOENT or "command not found".
 */
export function requireTools(...tools: readonly Tool[]): void {
  const path = (process.env['PATH'] ?? '').split(delimiter).filter((d) => d !== '');
  const missing = tools.filter((t) =>
    t.startsWith('/') ? !executable(t) : !path.some((d) => executable(join(d, t))),
  );
  if (missing.length > 0)
    throw new Error(
      `${missing.join(', ')} not installed: apt-get install ${[...new Set(missing.map((t) => TOOL_PACKAGES[t]))].join(' ')} (.ci/run does this)`,
    );
}

/**
 * Runs an external tool and returns its stdout. Throws with the tool's stderr on failure, and
 * with the Debian package name when the tool is not installed.
 */
export function run(
  tool: Tool,
  args: readonly string[],
  options: ExecFileSyncOptions = {},
): Buffer {
  try {
    return execFileSync(tool, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      maxBuffer: 64 << 20,
      ...options,
    }) as Buffer;
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: Buffer };
    if (err.code === 'ENOENT') {
      throw new Error(
        `${tool} is not installed: apt-get install ${TOOL_PACKAGES[tool]} (.ci/run does this)`,
        { cause: e },
      );
    }
    throw new Error(`${tool} ${args.join(' ')} failed: ${err.stderr?.toString() ?? err.message}`, {
      cause: e,
    });
  }
}

/** Runs python3 (Debian's, with python3-cryptography) on a script given as text. */
export function python(
  script: string,
  args: readonly string[] = [],
  options: ExecFileSyncOptions = {},
): Buffer {
  return run('/usr/bin/python3', ['-c', script, ...args], options);
}

/**
 * A PKCS#10 request (DER) from `openssl req`: a new key of `newkey` (`['-newkey', 'rsa:2048']`),
 * subject `subj` (`/CN=x`), `-addext` values, signed with `digest`.
 */
export function opensslCsrDer(
  newkey: readonly string[],
  subj: string,
  addext: readonly string[] = [],
  digest = 'sha256',
): Uint8Array {
  const dir = tempDir();
  run('openssl', [
    'req',
    '-new',
    ...newkey,
    '-nodes',
    '-keyout',
    join(dir, 'k.pem'),
    `-${digest}`,
    '-subj',
    subj,
    ...addext.flatMap((e) => ['-addext', e]),
    '-outform',
    'DER',
    '-out',
    join(dir, 'r.der'),
  ]);
  return new Uint8Array(
    run('openssl', ['req', '-inform', 'DER', '-in', join(dir, 'r.der'), '-outform', 'DER']),
  );
}

/**
 * A throw-away P-256 key and self-signed certificate from `openssl req -x509` (two days), with
 * `-addext` values, written to `dir` as `key.pem` and `cert.pem`; returns both PEM texts.
 */
export function opensslSelfSigned(
  dir: string,
  subj: string,
  addext: readonly string[] = [],
): { key: string; cert: string } {
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '2',
    '-subj',
    subj,
    ...addext.flatMap((e) => ['-addext', e]),
  ]);
  return { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
}

/**
 * A root CA and an issuing CA made by openssl (so that import paths do not depend on our own
 * builder), in a new temp dir: `root.key`/`root.pem` (self-signed; CA:TRUE, keyCertSign and
 * cRLSign), `issuing.key`/`issuing.pem` (signed by the root; CA:TRUE pathlen 0, keyUsage
 * `issuingKu`, SKI, AKI). Keys are `newkey` (`['-newkey', 'rsa:2048']`). With `pfxPassword`,
 * also `ca.pfx`: the issuing key and certificate with the root, as `openssl pkcs12 -export`.
 */
export function opensslCaHierarchy(o: {
  readonly newkey: readonly string[];
  readonly issuingKu: string;
  readonly root?: string;
  readonly issuing?: string;
  readonly pfxPassword?: string;
}): { dir: string; p: (file: string) => string } {
  const dir = tempDir();
  const p = (f: string) => join(dir, f);
  run('openssl', [
    'req',
    '-x509',
    ...o.newkey,
    '-nodes',
    '-keyout',
    p('root.key'),
    '-subj',
    o.root ?? '/CN=Imported Root',
    '-days',
    '3650',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-out',
    p('root.pem'),
  ]);
  run('openssl', [
    'req',
    '-new',
    ...o.newkey,
    '-nodes',
    '-keyout',
    p('issuing.key'),
    '-subj',
    o.issuing ?? '/CN=Imported Issuing',
    '-out',
    p('issuing.csr'),
  ]);
  writeFileSync(
    p('ext.cnf'),
    `basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,${o.issuingKu}\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n`,
  );
  run('openssl', [
    'x509',
    '-req',
    '-in',
    p('issuing.csr'),
    '-CA',
    p('root.pem'),
    '-CAkey',
    p('root.key'),
    '-CAcreateserial',
    '-days',
    '1000',
    '-extfile',
    p('ext.cnf'),
    '-out',
    p('issuing.pem'),
  ]);
  if (o.pfxPassword !== undefined)
    run('openssl', [
      'pkcs12',
      '-export',
      '-inkey',
      p('issuing.key'),
      '-in',
      p('issuing.pem'),
      '-certfile',
      p('root.pem'),
      '-passout',
      `pass:${o.pfxPassword}`,
      '-out',
      p('ca.pfx'),
    ]);
  return { dir, p };
}

/** `openssl x509 -fingerprint` of a certificate file as certpost writes thumbprints: lowercase hex. */
export function opensslThumbprint(
  file: string,
  digest: 'sha1' | 'sha256',
  inform: 'PEM' | 'DER' = 'PEM',
): string {
  const out = run('openssl', [
    'x509',
    '-inform',
    inform,
    '-in',
    file,
    '-noout',
    '-fingerprint',
    `-${digest}`,
  ]);
  return out.toString().split('=')[1]!.trim().replace(/:/g, '').toLowerCase();
}

/**
 * What `openssl pkcs12 -info -nodes` prints of a PFX opened with `password`: every certificate
 * and key as PEM with its bag attributes. Throws when openssl cannot open it.
 */
export function opensslPkcs12Info(file: string, password: string): string {
  return run('openssl', [
    'pkcs12',
    '-in',
    file,
    '-info',
    '-nodes',
    '-passin',
    `pass:${password}`,
  ]).toString();
}
