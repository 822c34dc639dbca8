/**
 * Seed inputs, from the test vectors the repository already keeps (each with its provenance in
 * the README of its directory) and from deterministic transformations of them: the certificate
 * of `scep/testdata/ca.pem` as DER, the CSR inside micromdm's PKCSReq (decrypted with the test
 * CA's key), Windows' PKCS#10 out of its RequestSecurityToken, the certificates of the Fleet
 * provisioning document, a PKCS#7 bundle of those, and the SyncML bodies of Microsoft's CSP
 * examples inside the header of `client-pkg1.xml`. `seeds/README.md` has the rest.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { parseRequestSecurityToken } from '../omadm/mde2.ts';
import { parseProvisioningDoc } from '../omadm/provisioning.ts';
import { decodePem, encodePem } from '../pki/pem.ts';
import { encodePkcs7Certificates } from '../pki/pkcs7.ts';
import { parsePrivateKeyPem } from '../pki/keys.ts';
import { parseCertificate, type Certificate } from '../pki/x509.ts';
import { openRequest, parsePkiMessage } from '../scep/message.ts';
import type { KeyObject } from 'node:crypto';

const root = new URL('../', import.meta.url);
const file = (path: string) => new Uint8Array(readFileSync(new URL(path, root)));
const text = (path: string) => readFileSync(new URL(path, root), 'utf8');
const bytes = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));

/** The SCEP test CA (RSA 2048): responder of the SCEP targets, trust anchor of `read`. */
export function testCa(): { certificate: Certificate; key: KeyObject } {
  const certificate = parseCertificate(decodePem(text('scep/testdata/ca.pem'))[0]!.der);
  return { certificate, key: parsePrivateKeyPem(text('scep/testdata/ca.key')).key };
}

/** micromdm scepclient's PKCSReq (scep/testdata/README.md). */
export const pkcsReq = () => file('scep/testdata/pkcsreq-micromdm-2.1.0.der');

/** The CSR inside the PKCSReq, decrypted with the test CA key. */
export async function scepCsr(): Promise<Uint8Array> {
  const opened = await openRequest(parsePkiMessage(pkcsReq()), testCa());
  if (!('csr' in opened)) throw new Error('the PKCSReq seed holds no CSR');
  return opened.csr.der;
}

/** Windows 10's PKCS#10 from its RequestSecurityToken (omadm/testdata/mde2/README.md). */
export const windowsCsr = () =>
  parseRequestSecurityToken(text('omadm/testdata/mde2/windows-rst-request.xml')).binarySecurityToken
    .der;

/** Root and client certificate of the provisioning document Windows installed. */
export function provisioningCertificates(): Uint8Array[] {
  const doc = parseProvisioningDoc(text('omadm/testdata/mde2/fleet-poc-provisioning-doc.xml'));
  return [...doc.rootCertificates, doc.clientCertificate].map((c) => c.der);
}

/** Every certificate the seeds know, DER. */
export function certificates(): Uint8Array[] {
  return [testCa().certificate.der, ...provisioningCertificates()];
}

export function pkcs7Bundle(): Uint8Array {
  return encodePkcs7Certificates(certificates().map(parseCertificate));
}

export function pemBundle(): Uint8Array {
  return bytes(
    certificates()
      .map((c) => encodePem('CERTIFICATE', c))
      .join(''),
  );
}

export const seedFile = (name: string) => file(`fuzz/seeds/${name}`);
export const pkcs12Seeds = () =>
  ['openssl-aes.p12', 'openssl-legacy.p12', 'openssl-plain.p12'].map(seedFile);

/** SCEP test vectors and MS-MDE2 messages as files of a directory, sorted by name. */
export function xmlFiles(dir: string): Uint8Array[] {
  return readdirSync(new URL(dir, root))
    .filter((f) => f.endsWith('.xml'))
    .toSorted()
    .map((f) => file(`${dir}/${f}`));
}

/**
 * SyncML messages: the client package of omadm/testdata, and each of Microsoft's CSP examples
 * (device/testdata/ms-examples) given that package's SyncHdr so the parser gets past it.
 */
export function syncmlMessages(): Uint8Array[] {
  const pkg1 = text('omadm/testdata/client-pkg1.xml');
  const header = /<SyncHdr>[\s\S]*<\/SyncHdr>/.exec(pkg1)?.[0] ?? '';
  const examples = readdirSync(new URL('device/testdata/ms-examples', root))
    .filter((f) => f.endsWith('.xml'))
    .toSorted()
    .map((f) => text(`device/testdata/ms-examples/${f}`));
  const wrapped = examples.map((x) => {
    const body = /<SyncBody>[\s\S]*<\/SyncBody>/.exec(x)?.[0] ?? `<SyncBody>${x}</SyncBody>`;
    return `<SyncML xmlns="SYNCML:SYNCML1.2">${header}${body}</SyncML>`;
  });
  return [pkg1, ...wrapped, ...examples].map(bytes);
}

/** The .eml test messages of mail/testdata (made by MailComposer and openssl; see its README). */
export function emlFiles(): Uint8Array[] {
  return readdirSync(new URL('mail/testdata/eml/', root))
    .filter((f) => f.endsWith('.eml'))
    .toSorted()
    .map((f) => file(`mail/testdata/eml/${f}`));
}
