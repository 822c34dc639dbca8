/**
 * Test kit of the mail component: the test certificates of testdata/ (see its README), parsed.
 * Imported only from tests.
 */
import { readFileSync } from 'node:fs';
import { parsePrivateKeyPem, type PrivateKey } from '../pki/keys.ts';
import { decodePem } from '../pki/pem.ts';
import { parseCertificate, type Certificate } from '../pki/x509.ts';

const TESTDATA = new URL('testdata/', import.meta.url);

function certificate(name: string): Certificate {
  const [block] = decodePem(readFileSync(new URL(name, TESTDATA), 'utf8'));
  return parseCertificate(block!.der);
}

export interface MailFixtures {
  /** The user certificate, its issuing CA, the root: leaf first. */
  readonly user: Certificate;
  readonly issuing: Certificate;
  readonly root: Certificate;
  readonly userKey: PrivateKey;
  /** Path of a fixture file, for openssl. */
  path(name: 'user.pem' | 'issuing.pem' | 'root.pem' | 'user.key'): string;
}

export function mailFixtures(): MailFixtures {
  return {
    user: certificate('user.pem'),
    issuing: certificate('issuing.pem'),
    root: certificate('root.pem'),
    userKey: parsePrivateKeyPem(readFileSync(new URL('user.key', TESTDATA), 'utf8')),
    path: (name) => new URL(name, TESTDATA).pathname,
  };
}
