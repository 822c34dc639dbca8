/**
 * Regressions found by fuzzing: each input of testdata/fuzz/ (its README says what it broke)
 * through the entry point it broke, with the refusal it must get now. The inputs that cost
 * seconds before their fix must be refused well within one.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import * as der from './der.ts';
import { isPkiError, type PkiErrorCode } from './errors.ts';
import { parseCsr } from './csr.ts';
import { parsePkcs12 } from './pkcs12.ts';
import { parsePkcs7Certificates } from './pkcs7.ts';
import { readPki } from './read.ts';
import { parseCertificate } from './x509.ts';

const DIR = new URL('testdata/fuzz/', import.meta.url);

function input(name: string): Uint8Array {
  const bytes = readFileSync(new URL(name, DIR));
  return new Uint8Array(name.endsWith('.gz') ? gunzipSync(bytes) : bytes);
}

const CASES: Readonly<Record<string, { run: (b: Uint8Array) => unknown; code: PkiErrorCode }>> = {
  'der--universalstring-beyond-unicode.der': {
    run: (b) => der.string(der.decode(b)),
    code: 'ERR_PKI_MALFORMED',
  },
  'der--oid-arc-256k.der.gz': { run: parseCertificate, code: 'ERR_PKI_LIMIT' },
  'x509--empty-version.der': { run: parseCertificate, code: 'ERR_PKI_MALFORMED' },
  'x509--name-attribute-without-type.der': { run: parseCertificate, code: 'ERR_PKI_MALFORMED' },
  'x509--validity-without-times.der': { run: parseCertificate, code: 'ERR_PKI_MALFORMED' },
  'csr--attribute-without-type.der': { run: parseCsr, code: 'ERR_PKI_MALFORMED' },
  'pkcs7--certificate-empty-version.der': {
    run: parsePkcs7Certificates,
    code: 'ERR_PKI_MALFORMED',
  },
  'pkcs7--name-attribute-without-type.der': {
    run: parsePkcs7Certificates,
    code: 'ERR_PKI_MALFORMED',
  },
  // Under the default budget this MAC is a legitimate cost; a smaller budget refuses it first.
  'pkcs12--mac-iterations-1m.p12': {
    run: (b) => parsePkcs12(b, 'secret', { maxIterations: 100_000 }),
    code: 'ERR_PKI_LIMIT',
  },
  'read--pkcs12-integer-60k.p12.gz': {
    run: (b) => readPki(b, { password: 'secret' }),
    code: 'ERR_PKI_LIMIT',
  },
};

it('every input found by fuzzing has its case here', () => {
  const files = readdirSync(DIR).filter((f) => f.includes('--'));
  assert.deepEqual(files.toSorted(), Object.keys(CASES).toSorted());
});

for (const [name, c] of Object.entries(CASES)) {
  it(`${name}: ${c.code}, promptly`, async () => {
    const bytes = input(name);
    const started = performance.now();
    let error: unknown;
    try {
      await c.run(bytes);
    } catch (e) {
      error = e;
    }
    assert.ok(isPkiError(error, c.code), `expected ${c.code}, got ${String(error)}`);
    assert.ok(performance.now() - started < 1000, 'refused within a second');
  });
}
