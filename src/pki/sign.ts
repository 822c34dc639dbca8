/**
 * Signing for the structures we build (certificates, CRLs, CSRs): the AlgorithmIdentifier a
 * key signs with, and the signature itself (key-ref.ts: off the event loop for software keys,
 * in the token for external ones).
 */
import { enc } from './der.ts';
import { PkiError } from './errors.ts';
import { publicKeyOf, signWith, type Digest, type PrivateKeyRef } from './key-ref.ts';

export type { Digest } from './key-ref.ts';

const SIG_OIDS = {
  rsa: {
    sha1: '1.2.840.113549.1.1.5',
    sha256: '1.2.840.113549.1.1.11',
    sha384: '1.2.840.113549.1.1.12',
    sha512: '1.2.840.113549.1.1.13',
  },
  ec: {
    sha1: '1.2.840.10045.4.1',
    sha256: '1.2.840.10045.4.3.2',
    sha384: '1.2.840.10045.4.3.3',
    sha512: '1.2.840.10045.4.3.4',
  },
} as const;

const EC_DEFAULT_DIGEST: Readonly<Record<string, Digest>> = {
  prime256v1: 'sha256',
  secp384r1: 'sha384',
  secp521r1: 'sha512',
};

/** How a key signs: the DER AlgorithmIdentifier and the digest name `crypto.sign` takes. */
export interface SignatureAlgorithm {
  readonly algorithmIdentifier: Uint8Array;
  readonly hash: Digest | null;
}

/**
 * The signature algorithm for an issuer key (RFC 5280 §4.1.1.2): RSA → sha*WithRSAEncryption
 * with NULL parameters (RFC 4055 §5); EC → ecdsa-with-SHA* with parameters absent
 * (RFC 5758 §3.2); Ed25519 → id-Ed25519, parameters absent (RFC 8410 §3). Other key types
 * (RSA-PSS keys, DSA, Ed448) are refused with `ERR_PKI_UNSUPPORTED`.
 */
export function signatureAlgorithmFor(
  privateKey: PrivateKeyRef,
  digest?: Digest,
): SignatureAlgorithm {
  const key = publicKeyOf(privateKey);
  switch (key.asymmetricKeyType) {
    case 'rsa': {
      const hash = digest ?? 'sha256';
      return { algorithmIdentifier: enc.seq(enc.oid(SIG_OIDS.rsa[hash]), enc.null()), hash };
    }
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve ?? '';
      const hash = digest ?? EC_DEFAULT_DIGEST[curve] ?? 'sha256';
      return { algorithmIdentifier: enc.seq(enc.oid(SIG_OIDS.ec[hash])), hash };
    }
    case 'ed25519':
      return { algorithmIdentifier: enc.seq(enc.oid('1.3.101.112')), hash: null };
    default:
      throw new PkiError(
        'ERR_PKI_UNSUPPORTED',
        `cannot sign with a ${key.asymmetricKeyType ?? 'unknown'} key`,
      );
  }
}

/**
 * Appends `signatureAlgorithm` and `signatureValue` to a signed structure (certificate or CRL:
 * both are `SEQUENCE { tbs, AlgorithmIdentifier, BIT STRING }`).
 */
export async function signStructure(
  tbs: Uint8Array,
  alg: SignatureAlgorithm,
  key: PrivateKeyRef,
): Promise<Uint8Array> {
  const sig = await signWith(key, tbs, alg.hash);
  return enc.seq(tbs, alg.algorithmIdentifier, enc.bits(sig));
}
