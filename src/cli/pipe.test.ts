/**
 * `certpost … | head -1`: a reader that stops early closes the pipe, and the command must end
 * quietly with its own status, not with an EPIPE stack (issue 7). The real command runs with
 * its stdout (or stderr) pipe already closed by this process before it writes a byte (it takes
 * far longer to start than the close), so every write it makes meets EPIPE.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { EXIT } from './exit-codes.ts';

const BIN = new URL('../../bin/certpost.js', import.meta.url).pathname;
const CA = new URL('../scep/testdata/ca.pem', import.meta.url).pathname;

/** Runs certpost with `closed` ('stdout' or 'stderr') closed at once; the other is read. */
function withClosed(
  closed: 'stdout' | 'stderr',
  args: readonly string[],
): Promise<{ code: number | null; signal: string | null; other: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  child[closed].destroy();
  const open = closed === 'stdout' ? child.stderr : child.stdout;
  let other = '';
  open.setEncoding('utf8').on('data', (s: string) => (other += s));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, other }));
  });
}

// The processes only wait for their own start: run them side by side.
describe('certpost into a pipe closed early', { concurrency: true }, () => {
  for (const args of [['--help'], ['inspect', CA, '--json']])
    it(`${args.join(' ').replace(CA, 'ca.pem')}: exits 0, nothing on stderr`, async () => {
      const r = await withClosed('stdout', args);
      assert.deepEqual(r, { code: EXIT.ok, signal: null, other: '' });
    });

  it('an error whose message meets a closed stderr still exits with its own code', async () => {
    const r = await withClosed('stderr', ['inspect', '/nonexistent/ca.pem']);
    assert.deepEqual(r, { code: EXIT.input, signal: null, other: '' });
  });
});
