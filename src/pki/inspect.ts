/**
 * The inspection report of a whole file: what `certpost inspect --json` prints and what the
 * device installer shows before it writes anything (design.md §1).
 *
 * Stable JSON (outside checks use it): `{ format, certificates: [{subject, issuer,
 * serialNumber, notBefore, notAfter, sha1, sha256, publicKey: {type, bits|curve}, keyUsage,
 * extendedKeyUsage, subjectAltNames, isCA, selfSigned, role, …}], privateKeys: [{type,
 * bits|curve, matchesCertificate}] }`. Fields may be added, never renamed or removed.
 */
import { buildChain, describeTrust, type ChainProblemCode, type ChainResult } from './chain.ts';
import { inspectCsr, type CsrInfo } from './csr.ts';
import { keyMatchesCertificate } from './keys.ts';
import type { PkiContents, PkiFormat } from './read.ts';
import {
  inspectCertificate,
  sha1Thumbprint,
  type Certificate,
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

/** Whether a certificate's chain reaches a trust anchor, and why not (design.md §1). */
export interface TrustReport {
  readonly trusted: boolean;
  /** One line for people, e.g. `trusted: CN=leaf → CN=Root`. */
  readonly summary: string;
  /** SHA-1 thumbprints from the certificate up to where the chain ended. */
  readonly chain: readonly string[];
  readonly problems: readonly {
    readonly code: ChainProblemCode;
    readonly message: string;
    readonly certificate: string;
  }[];
}

export interface InspectOptions {
  /**
   * Trust anchors to validate against (e.g. the system store). Without them no trust is
   * reported: a root inside the inspected file is never trusted just for being there.
   */
  readonly trusted?: readonly Certificate[];
  readonly at?: Date;
}

export interface InspectionReport {
  readonly format: PkiFormat;
  readonly encoding: PkiContents['encoding'];
  readonly certificates: readonly (CertificateInfo & {
    readonly friendlyName?: string;
    readonly hasPrivateKey: boolean;
    /** Present when trust anchors were given (see {@link InspectOptions}). */
    readonly trust?: TrustReport;
  })[];
  readonly privateKeys: readonly PrivateKeyReport[];
  readonly certificateRequests: readonly CsrInfo[];
  readonly pkcs12?: PkiContents['pkcs12'];
  readonly notes: readonly string[];
}

export function inspectContents(
  contents: PkiContents,
  options: InspectOptions = {},
): InspectionReport {
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
        ...(options.trusted
          ? { trust: trustOf(c, contents.certificates, options.trusted, options.at) }
          : {}),
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

/** Validates `cert` against the anchors, using the file's other certificates as intermediates. */
function trustOf(
  cert: Certificate,
  inFile: readonly Certificate[],
  trusted: readonly Certificate[],
  at?: Date,
): TrustReport {
  return trustReport(buildChain(cert, { trusted, intermediates: inFile, ...(at ? { at } : {}) }));
}

/** A chain validation result as the inspection reports it. */
export function trustReport(r: ChainResult): TrustReport {
  return {
    trusted: r.trusted,
    summary: describeTrust(r),
    chain: r.chain.map(sha1Thumbprint),
    problems: r.problems.map((p) => ({
      code: p.code,
      message: p.message,
      certificate: p.certificate,
    })),
  };
}
