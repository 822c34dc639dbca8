/**
 * Opening a data directory: a CA that cannot be loaded is an error, never "no CA yet" (which
 * would make `serve` create a new CA over it).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { spkiOf } from '../pki/key-ref.ts';
import { keyMatchesCertificate } from '../pki/keys.ts';
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

it('a first start cut short before the issuing certificate was written: the next start makes the CA', async () => {
  const dataDir = join(tempDir(), 'data');
  const first = await openContext({ dataDir, createCa: true });
  await first.close();
  // What an interrupted first save leaves (saveAuthority writes the issuing certificate last):
  // keys and the other certificates, no issuing certificate.
  rmSync(join(dataDir, 'ca', 'issuing.crt'));
  const again = await openContext({ dataDir, createCa: true });
  try {
    assert.ok(existsSync(join(dataDir, 'ca', 'issuing.crt')));
    const key = again.ca.issuing.key;
    assert.ok(keyMatchesCertificate({ key, spki: spkiOf(key) }, again.ca.issuing.certificate));
  } finally {
    await again.close();
  }
});
