/**
 * Starts `certpost serve` as a real process and waits for its `listening` line (the stable
 * interface scripts use), so tests and benchmarks run the server the way operators do.
 * Every process started here is killed when the test process exits, even after a failure.
 */
import { spawn, type ChildProcess } from 'node:child_process';

const BIN = new URL('../../bin/certpost.js', import.meta.url).pathname;
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

export interface ServeProcess {
  readonly child: ChildProcess;
  /** Base URL from the `listening` line, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  /** The `listening` line, parsed. */
  readonly listening: Record<string, unknown>;
  /** Everything the process wrote to stdout so far. */
  output(): string;
  /** Everything it wrote to stderr so far. */
  stderr(): string;
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Spawns `certpost serve ARGS…` (with `--listen 127.0.0.1:0` unless given) and waits until it listens. */
export async function spawnServe(
  args: readonly string[],
  o: {
    env?: NodeJS.ProcessEnv;
    timeoutMs?: number;
    /**
     * A command the server is started through, e.g. `['unshare', '-m', 'sh', '-c', 'mount … &&
     * exec "$0" "$@"']` for fault tests; it must exec the server in the end (signals reach it).
     */
    wrap?: readonly string[];
  } = {},
): Promise<ServeProcess> {
  const listen = args.includes('--listen') ? [] : ['--listen', '127.0.0.1:0'];
  const argv = [process.execPath, BIN, 'serve', ...listen, ...args];
  const [file, ...rest] = [...(o.wrap ?? []), ...argv] as [string, ...string[]];
  const child = spawn(file, rest, {
    env: o.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      running.delete(child);
      resolve(code);
    }),
  );
  const listening = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`certpost serve did not start: ${out}${err}`)),
      o.timeoutMs ?? 30_000,
    );
    // Once found, no longer looked for: a busy server writes a line per request.
    const check = () => {
      const line = out.split('\n').find((l) => l.includes('"listening"'));
      if (line) {
        clearTimeout(timer);
        child.stdout.off('data', check);
        resolve(JSON.parse(line) as Record<string, unknown>);
      }
    };
    child.stdout.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`certpost serve exited with ${code}: ${out}${err}`));
    });
  });
  return {
    child,
    url: String(listening['url']),
    listening,
    output: () => out,
    stderr: () => err,
    stop: (signal = 'SIGTERM') => {
      child.kill(signal);
      return exited;
    },
  };
}
