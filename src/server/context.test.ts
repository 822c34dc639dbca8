/**
 * Opening a data directory: a CA that cannot be loaded is an error, never "no CA yet" (which
 * would make `serve` create a new CA over it).
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { tempDir } from '../testing/tools.ts';
import { openContext } from './context.ts';

it('a missing CA passphrase is an error, and the CA is left as it was', async () => {
  const dataDir = join(tempDir(), 'data');
  const saved = process.env['CERTPOST_CA_PASSPHRASE'];
  delete process.env['CERTPOST_CA_PASSPHRASE'];
  try {
    const first = await openContext({ dataDir, createCa: true });
    await first.close();
    const issuing = readFileSync(join(dataDir, 'ca', 'issuing.crt'), 'utf8');
    rmSync(join(dataDir, 'ca', 'passphrase'));
    await assert.rejects(
      openContext({ dataDir, createCa: true }),
      (e) =>
        (e as NodeJS.ErrnoException).code === 'ERR_CA_STATE' &&
        /CERTPOST_CA_PASSPHRASE/.test((e as Error).message),
    );
    assert.equal(readFileSync(join(dataDir, 'ca', 'issuing.crt'), 'utf8'), issuing);
  } finally {
    if (saved !== undefined) process.env['CERTPOST_CA_PASSPHRASE'] = saved;
  }
});
