/**
 * Regressions found by fuzzing: each input of testdata/fuzz/ (its README says what it broke)
 * sent to the SCEP service as a POST body or a GET query. Bytes that are not a pkiMessage must
 * be a PkiError (the adapter's HTTP 400), never another exception (an HTTP 500).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { it } from 'node:test';
import { isPkiError } from '../pki/errors.ts';
import { parsePrivateKeyPem } from '../pki/keys.ts';
import { decodePem } from '../pki/pem.ts';
import { parseCertificate } from '../pki/x509.ts';
import { decodeGetMessage } from './get-message.ts';
import { parsePkiMessage } from './message.ts';
import { createScepService } from './service.ts';

const DIR = new URL('testdata/fuzz/', import.meta.url);
const testdata = (name: string) => readFileSync(new URL(`testdata/${name}`, import.meta.url));

const certificate = parseCertificate(decodePem(testdata('ca.pem').toString('latin1'))[0]!.der);
const service = createScepService({
  responder: { certificate, key: parsePrivateKeyPem(testdata('ca.key').toString('latin1')).key },
  chain: [certificate],
  enrollment: {
    enroll: async () => ({ status: 'refused', reason: 'rejected', message: 'test' }),
    poll: async () => ({ status: 'pending', requestId: 'test' }),
    findCertificate: async () => undefined,
    currentCrl: async () => new Uint8Array(0),
  },
});

/** The pkiMessage bytes of a regression input: a GET query's message, or the body itself. */
function message(name: string): Uint8Array {
  const raw = readFileSync(new URL(name, DIR));
  if (!name.endsWith('.txt')) return new Uint8Array(raw);
  const decoded = decodeGetMessage(raw.toString('latin1'));
  assert.ok(decoded, 'the query carries a base64 message');
  return decoded;
}

const files = readdirSync(DIR).filter((f) => f.includes('--'));

it('there are inputs to replay', () => assert.ok(files.length >= 4));

for (const name of files) {
  it(`${name}: the codec and the service refuse it as not a pkiMessage`, async () => {
    const bytes = message(name);
    assert.throws(
      () => parsePkiMessage(bytes),
      (e) => isPkiError(e, 'ERR_PKI_MALFORMED'),
    );
    await assert.rejects(service.pkiOperation(bytes), (e) => isPkiError(e, 'ERR_PKI_MALFORMED'));
  });
}
