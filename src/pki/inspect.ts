/**
 * The inspection report of a whole file: what `certpost inspect --json` prints and what the
 * device installer shows before it writes anything (design.md §1).
 *
 * Stable JSON (outside checks use it): `{ format, certificates: [{subject, issuer,
 * serialNumber, notBefore, notAfter, sha1, sha256, publicKey: {type, bits|curve}, keyUsage,
 * extendedKeyUsage, subjectAltNames, isCA, selfSigned, role, …}], privateKeys: [{type,
 * bits|curve, matchesCertificate}] }`. Fields may be added, never renamed or removed.
 */
import { inspectCsr, type CsrInfo } from './csr.ts';
import { keyMatchesCertificate } from './keys.ts';
import type { PkiContents, PkiFormat } from './read.ts';
import {
  inspectCertificate,
  sha1Thumbprint,
  type CertificateInfo,
  type PublicKeyInfo,
} from './x509.ts';

export interface PrivateKeyReport extends PublicKeyInfo {
  /** True when a certificate in the same file carries this key's public key. */
  readonly matchesCertificate: boolean;
  /** SHA-1 thumbprint of that certificate, or null. */
  readonly certificateSha1: string | null;
  readonly friendlyName?: string;
}

export interface InspectionReport {
  readonly format: PkiFormat;
  readonly encoding: PkiContents['encoding'];
  readonly certificates: readonly (CertificateInfo & {
    readonly friendlyName?: string;
    readonly hasPrivateKey: boolean;
  })[];
  readonly privateKeys: readonly PrivateKeyReport[];
  readonly certificateRequests: readonly CsrInfo[];
  readonly pkcs12?: PkiContents['pkcs12'];
  readonly notes: readonly string[];
}

export function inspectContents(contents: PkiContents): InspectionReport {
  const keyOwners = contents.keys.map(
    (k) => contents.certificates.find((c) => keyMatchesCertificate(k, c)) ?? null,
  );
  return {
    format: contents.format,
    encoding: contents.encoding,
    certificates: contents.certificates.map((c) => {
      const friendlyName = contents.friendlyNames.get(c);
      return {
        ...inspectCertificate(c),
        ...(friendlyName !== undefined ? { friendlyName } : {}),
        hasPrivateKey: keyOwners.includes(c),
      };
    }),
    privateKeys: contents.keys.map((k, i) => {
      const owner = keyOwners[i] ?? null;
      return {
        ...k.info,
        matchesCertificate: owner !== null,
        certificateSha1: owner ? sha1Thumbprint(owner) : null,
        ...(k.friendlyName !== undefined ? { friendlyName: k.friendlyName } : {}),
      };
    }),
    certificateRequests: contents.csrs.map(inspectCsr),
    ...(contents.pkcs12 ? { pkcs12: contents.pkcs12 } : {}),
    notes: contents.notes,
  };
}
