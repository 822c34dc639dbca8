/**
 * Test kit: the reference SCEP server, micromdm `scepserver` 2.1.0 (Debian package `scep`),
 * reachable only on the host's 127.0.0.1 (design.md §4: tests start the real parts themselves;
 * ../shared/docs/scep-reference.md §1.1 and §1.2 for why it runs this way).
 *
 * scepserver 2.1.0 has no bind-address flag and listens on ":PORT", every interface. So it runs
 * in a private network namespace (`unshare -n`, which needs root) whose only interface is its
 * own loopback, beside a socat that serves a unix socket in this run's directory; a second
 * socat in the host namespace listens on 127.0.0.1:PORT (a free port) and forwards to that
 * socket. Nothing listens on any other host address.
 *
 * The CA is made with openssl, not `scepserver ca -init`: 2.1.0's own CA certificate lacks
 * digitalSignature, so OpenSSL-based clients reject its CertRep signatures. Its key is stored
 * as 2.1.0's file depot requires: a legacy-encrypted PKCS#1 PEM whose passphrase goes to
 * `-capass`.
 *
 * Each of the two process trees is its own process group; `stop()` kills both groups with
 * SIGKILL and resolves once no process of either is left running (zombies waiting for init are
 * not running). Servers still up when the test process exits are killed then.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { atProcessEnd, freePort, requireTools, run, tempDir } from './tools.ts';

export interface ReferenceScepOptions {
  /** scepserver `-challenge`: required on every request, renewals included. Default random. */
  readonly challenge?: string;
  /**
   * scepserver `-allowrenew`: a subject DN that already has a certificate valid for more than
   * this many days is refused ("DN already exists"). Default 0, so renewals are accepted;
   * scepserver's own default is 14.
   */
  readonly allowRenewDays?: number;
}

export interface ReferenceScepServer {
  /** `http://127.0.0.1:PORT/scep`. */
  readonly url: string;
  readonly challenge: string;
  /** The CA certificate scepserver serves from GetCACert, PEM. */
  readonly caCertPem: string;
  /** The CA's private key as unencrypted PKCS#8 PEM (to open captured requests). */
  readonly caKeyPem: string;
  /** What scepserver and the socat bridges wrote to stdout and stderr so far. */
  log(): string;
  /** The process groups (their leaders' pids) the server and its bridges run in. */
  processGroups(): number[];
  /** Kills every process of the server and its bridges, then removes its directory. */
  stop(): Promise<void>;
}

/** scepserver's port inside its namespace; the namespace is private, so any port will do. */
const INNER_PORT = 8080;

/**
 * Runs in the new namespace: brings its loopback up, starts scepserver and the socket side of
 * the bridge, and ends as soon as either ends (so an early failure is seen at once).
 */
const INNER_SCRIPT = `set -e
ip link set lo up
scepserver -depot depot -port ${INNER_PORT} -challenge "$1" -capass "$2" -allowrenew "$3" &
socat UNIX-LISTEN:bridge.sock,fork,mode=600 TCP:127.0.0.1:${INNER_PORT} &
wait -n
exit 1`;

/**
 * The pids of the processes of group `pgid` that are still running (not zombies), read from
 * /proc/PID/stat (proc(5): fields after the parenthesised comm are state, ppid, pgrp, …).
 */
export function runningInGroup(pgid: number): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'latin1');
    } catch {
      continue; // gone meanwhile
    }
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z' && state !== 'X') pids.push(Number(name));
  }
  return pids;
}

/**
 * Makes the CA in `depot/` as ../shared/docs/scep-reference.md §1.2 does; returns the PEMs and
 * the key's passphrase.
 */
function makeCa(dir: string): { caCertPem: string; caKeyPem: string; capass: string } {
  const depot = join(dir, 'depot');
  mkdirSync(depot);
  const capass = randomBytes(12).toString('hex');
  const keyFile = join(dir, 'ca.p8');
  run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    keyFile,
    '-days',
    '1825',
    '-subj',
    '/C=US/O=scep-ca/OU=SCEP CA/CN=interop test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign,cRLSign',
    '-addext',
    'subjectKeyIdentifier=hash',
    '-out',
    join(depot, 'ca.pem'),
  ]);
  run('openssl', [
    'rsa',
    '-in',
    keyFile,
    '-traditional',
    '-des3',
    '-passout',
    `pass:${capass}`,
    '-out',
    join(depot, 'ca.key'),
  ]);
  const caKeyPem = readFileSync(keyFile, 'utf8');
  rmSync(keyFile);
  return { caCertPem: readFileSync(join(depot, 'ca.pem'), 'utf8'), caKeyPem, capass };
}

/** A child in its own process group whose output is collected, not keeping the process alive. */
function spawnGroup(
  command: string,
  args: readonly string[],
  cwd: string,
  collect: (s: string) => void,
): ChildProcess {
  const child = spawn(command, args, { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  for (const stream of [child.stdout, child.stderr]) {
    stream.on('data', (d: Buffer) => collect(d.toString()));
    (stream as Socket).unref();
  }
  child.on('error', (e) => collect(`${command}: ${e.message}\n`));
  child.unref();
  return child;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const exited = (c: ChildProcess) => c.exitCode !== null || c.signalCode !== null;

/** Starts scepserver with a fresh CA and depot; resolves once GetCACaps answers through the bridge. */
export async function startReferenceScep(
  o: ReferenceScepOptions = {},
): Promise<ReferenceScepServer> {
  requireTools('openssl', 'scepserver', 'socat', 'unshare', 'ip');
  if (process.getuid?.() !== 0)
    throw new Error('the reference SCEP server needs root for its network namespace (unshare -n)');
  const dir = tempDir('certpost-scepserver-');
  const challenge = o.challenge ?? randomBytes(8).toString('hex');
  let output = '';
  const collect = (s: string) => (output += s);
  const { caCertPem, caKeyPem, capass } = makeCa(dir);
  const groups: ChildProcess[] = [];
  const kill = (): void => {
    for (const c of groups)
      try {
        process.kill(-c.pid!, 'SIGKILL');
      } catch {
        // the group is already gone
      }
  };
  const forget = atProcessEnd(kill);
  const stop = async (): Promise<void> => {
    kill();
    forget();
    for (let i = 0; groups.some((c) => runningInGroup(c.pid!).length > 0); i++) {
      if (i === 250) throw new Error(`scepserver processes survived SIGKILL:\n${output}`);
      await sleep(20);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const fail = async (what: string): Promise<never> => {
    await stop();
    throw new Error(`the reference SCEP server did not start: ${what}\n${output}`);
  };

  const inner = spawnGroup(
    'unshare',
    [
      '-n',
      '--',
      'bash',
      '-c',
      INNER_SCRIPT,
      'scepserver-netns',
      challenge,
      capass,
      String(o.allowRenewDays ?? 0),
    ],
    dir,
    collect,
  );
  groups.push(inner);
  const socket = join(dir, 'bridge.sock');
  for (let i = 0; !existsSync(socket); i++) {
    if (exited(inner) || i === 250) return fail('no bridge socket');
    await sleep(20);
  }
  // The free port can be taken before socat binds it: then socat exits, and we try another.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const outer = spawnGroup(
      'socat',
      [`TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork,backlog=512`, `UNIX-CONNECT:${socket}`],
      dir,
      collect,
    );
    groups.push(outer);
    const url = `http://127.0.0.1:${port}/scep`;
    for (let i = 0; i < 250 && !exited(outer); i++) {
      if (exited(inner)) return fail('scepserver exited');
      const ok = await fetch(`${url}?operation=GetCACaps`, { signal: AbortSignal.timeout(1000) })
        .then((r) => r.ok)
        .catch(() => false);
      if (ok)
        return {
          url,
          challenge,
          caCertPem,
          caKeyPem,
          log: () => output,
          processGroups: () => groups.map((c) => c.pid!),
          stop,
        };
      await sleep(20);
    }
    if (!exited(outer) || attempt === 3) return fail(`no answer on ${url}`);
    groups.splice(groups.indexOf(outer), 1);
  }
}
