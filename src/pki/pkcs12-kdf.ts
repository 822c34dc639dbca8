/**
 * Password-based encryption and MAC keys for PKCS#12: the RFC 7292 Appendix B key derivation,
 * the PKCS#12 PBE schemes of RFC 7292 Appendix C, and PBES2/PBKDF2 (RFC 8018 §6.2, §5.2,
 * Appendix A.2/A.4), parsed from their AlgorithmIdentifiers and dispatched to a cipher.
 *
 * Contract:
 * - {@link parsePbe} reads an encryption AlgorithmIdentifier without doing any cryptography;
 *   unknown schemes, PRFs and ciphers are `ERR_PKI_UNSUPPORTED`, bad shapes `ERR_PKI_MALFORMED`.
 *   The caller checks {@link PbeParams.iterations} against its limit before any derivation.
 * - {@link pbeDecrypt} returns the plaintext with its PKCS#5 padding removed, or throws
 *   `ERR_PKI_BAD_PASSWORD` with one fixed message whether the length, the padding or the
 *   cipher failed: nothing tells a caller (or an attacker) which check it was.
 * - PBKDF2 runs on libuv's thread pool (`crypto.pbkdf2`), so the event loop stays free and
 *   independent derivations run in parallel. The Appendix B KDF has no native API; it runs on
 *   the calling thread, with the per-iteration hash of SHA-1 and SHA-256 (every producer we
 *   know uses one of the two) done by an allocation-free compression loop
 *   ({@link pkcs12Kdf}); `bench/pkcs12.ts` measures it against Node's native PBKDF2.
 *
 * Passwords come in two encodings ({@link PasswordBytes}): RFC 7292 Appendix B.1 feeds the
 * PKCS#12 KDF a BMPString with a two-byte NUL terminator, while PBES2 feeds PBKDF2 the UTF-8
 * bytes of the password (what OpenSSL, NSS and Windows do; RFC 8018 leaves the encoding open).
 */
import { createCipheriv, createDecipheriv, hash, pbkdf2, randomBytes } from 'node:crypto';
import * as der from './der.ts';
import { Tag, enc, type Asn1 } from './der.ts';
import { PkiError, malformed } from './errors.ts';
import { rc2CbcDecrypt, rc2CbcEncrypt } from './rc2.ts';

/** OIDs of RFC 7292 Appendix C (pkcs-12PbeIds) and RFC 8018 Appendix B/C. */
export const PBE_OIDS = {
  pbeWithSHAAnd128BitRC4: '1.2.840.113549.1.12.1.1',
  pbeWithSHAAnd40BitRC4: '1.2.840.113549.1.12.1.2',
  pbeWithSHAAnd3KeyTripleDESCBC: '1.2.840.113549.1.12.1.3',
  pbeWithSHAAnd2KeyTripleDESCBC: '1.2.840.113549.1.12.1.4',
  pbeWithSHAAnd128BitRC2CBC: '1.2.840.113549.1.12.1.5',
  pbewithSHAAnd40BitRC2CBC: '1.2.840.113549.1.12.1.6',
  pbkdf2: '1.2.840.113549.1.5.12',
  pbes2: '1.2.840.113549.1.5.13',
  pbmac1: '1.2.840.113549.1.5.14',
  hmacWithSHA1: '1.2.840.113549.2.7',
  hmacWithSHA224: '1.2.840.113549.2.8',
  hmacWithSHA256: '1.2.840.113549.2.9',
  hmacWithSHA384: '1.2.840.113549.2.10',
  hmacWithSHA512: '1.2.840.113549.2.11',
  aes128CBC: '2.16.840.1.101.3.4.1.2',
  aes192CBC: '2.16.840.1.101.3.4.1.22',
  aes256CBC: '2.16.840.1.101.3.4.1.42',
  desEde3CBC: '1.2.840.113549.3.7',
  rc2CBC: '1.2.840.113549.3.2',
  desCBC: '1.3.14.3.2.7',
} as const;

/** Digest algorithms (NIST, RFC 5754) as they appear in MacData's DigestInfo. */
export const DIGEST_OIDS: Readonly<Record<string, HashName>> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.4': 'sha224',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

export type HashName = 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512';

/** Output and block sizes in bytes ("u" and "v" of RFC 7292 Appendix B.2). */
export const HASH_SIZES: Readonly<Record<HashName, { u: number; v: number }>> = {
  sha1: { u: 20, v: 64 },
  sha224: { u: 28, v: 64 },
  sha256: { u: 32, v: 64 },
  sha384: { u: 48, v: 128 },
  sha512: { u: 64, v: 128 },
};

const PRF_OIDS: Readonly<Record<string, HashName>> = {
  [PBE_OIDS.hmacWithSHA1]: 'sha1',
  [PBE_OIDS.hmacWithSHA224]: 'sha224',
  [PBE_OIDS.hmacWithSHA256]: 'sha256',
  [PBE_OIDS.hmacWithSHA384]: 'sha384',
  [PBE_OIDS.hmacWithSHA512]: 'sha512',
};

/** A password in both encodings that PKCS#12 producers use. */
export interface PasswordBytes {
  /** For the RFC 7292 Appendix B KDF: BMPString, normally with a two-byte NUL terminator. */
  readonly bmp: Uint8Array;
  /** For PBKDF2: the password's octets (UTF-8). */
  readonly utf8: Uint8Array;
}

/**
 * A password as PKCS#12 writers encode it: BMPString with its two-byte NUL terminator for the
 * Appendix B KDF (RFC 7292 Appendix B.1), UTF-8 for PBKDF2.
 */
export function passwordBytes(password: string): PasswordBytes {
  return {
    bmp: der.concat([der.bmpBytes(password), new Uint8Array(2)]),
    utf8: new TextEncoder().encode(password),
  };
}

/** Which key the Appendix B KDF derives (RFC 7292 Appendix B.3). */
export const KDF_ID = { key: 1, iv: 2, mac: 3 } as const;

type Cipher =
  | {
      readonly kind: 'node';
      readonly name: string;
      readonly keyLen: number;
      readonly block: number;
    }
  | { readonly kind: 'rc2'; readonly keyLen: number; readonly bits: number; readonly block: 8 };

/** Parsed encryption parameters: a PKCS#12 PBE scheme or PBES2 with PBKDF2. */
export type PbeParams =
  | {
      readonly scheme: 'pkcs12';
      /** Stable name, e.g. `pbe-sha1-3des`, `pbe-sha1-rc2-40`. */
      readonly name: string;
      readonly salt: Uint8Array;
      readonly iterations: number;
      readonly cipher: Cipher;
      readonly ivLen: number;
    }
  | {
      readonly scheme: 'pbes2';
      /** Stable name, e.g. `pbes2-aes-256-cbc-pbkdf2-hmac-sha256`. */
      readonly name: string;
      readonly salt: Uint8Array;
      readonly iterations: number;
      readonly prf: HashName;
      readonly cipher: Cipher;
      readonly iv: Uint8Array;
    };

const PKCS12_PBE: Readonly<Record<string, { name: string; cipher: Cipher } | undefined>> = {
  [PBE_OIDS.pbeWithSHAAnd3KeyTripleDESCBC]: {
    name: 'pbe-sha1-3des',
    cipher: { kind: 'node', name: 'des-ede3-cbc', keyLen: 24, block: 8 },
  },
  [PBE_OIDS.pbeWithSHAAnd2KeyTripleDESCBC]: {
    name: 'pbe-sha1-2des',
    cipher: { kind: 'node', name: 'des-ede-cbc', keyLen: 16, block: 8 },
  },
  [PBE_OIDS.pbeWithSHAAnd128BitRC2CBC]: {
    name: 'pbe-sha1-rc2-128',
    cipher: { kind: 'rc2', keyLen: 16, bits: 128, block: 8 },
  },
  [PBE_OIDS.pbewithSHAAnd40BitRC2CBC]: {
    name: 'pbe-sha1-rc2-40',
    cipher: { kind: 'rc2', keyLen: 5, bits: 40, block: 8 },
  },
};

const PBES2_CIPHERS: Readonly<
  Record<string, { name: string; keyLen: number; block: number } | undefined>
> = {
  [PBE_OIDS.aes128CBC]: { name: 'aes-128-cbc', keyLen: 16, block: 16 },
  [PBE_OIDS.aes192CBC]: { name: 'aes-192-cbc', keyLen: 24, block: 16 },
  [PBE_OIDS.aes256CBC]: { name: 'aes-256-cbc', keyLen: 32, block: 16 },
  [PBE_OIDS.desEde3CBC]: { name: 'des-ede3-cbc', keyLen: 24, block: 8 },
};

const UNSUPPORTED_NAMES: Readonly<Record<string, string>> = {
  [PBE_OIDS.pbeWithSHAAnd128BitRC4]: 'pbeWithSHAAnd128BitRC4',
  [PBE_OIDS.pbeWithSHAAnd40BitRC4]: 'pbeWithSHAAnd40BitRC4',
  [PBE_OIDS.desCBC]: 'single DES (desCBC)',
};

function unsupported(what: string, oid: string): PkiError {
  return new PkiError('ERR_PKI_UNSUPPORTED', `${what} ${UNSUPPORTED_NAMES[oid] ?? oid}`);
}

/**
 * Reads an encryption AlgorithmIdentifier (RFC 5280 §4.1.1.2) of a shrouded key bag or an
 * EncryptedData. No cryptography happens here.
 *
 * ```asn1
 * pkcs-12PbeParams ::= SEQUENCE { salt OCTET STRING, iterations INTEGER }   -- RFC 7292 App. C
 * PBES2-params ::= SEQUENCE { keyDerivationFunc AlgorithmIdentifier {{PBES2-KDFs}},
 *   encryptionScheme AlgorithmIdentifier {{PBES2-Encs}} }                  -- RFC 8018 A.4
 * PBKDF2-params ::= SEQUENCE { salt CHOICE { specified OCTET STRING, otherSource AlgorithmIdentifier },
 *   iterationCount INTEGER (1..MAX), keyLength INTEGER (1..MAX) OPTIONAL,
 *   prf AlgorithmIdentifier {{PBKDF2-PRFs}} DEFAULT algid-hmacWithSHA1 }   -- RFC 8018 A.2
 * RC2-CBC-Parameter ::= SEQUENCE { rc2ParameterVersion INTEGER OPTIONAL, iv OCTET STRING }
 * ```
 */
export function parsePbe(algId: Asn1): PbeParams {
  const [oidNode, params] = der.seq(algId, 'encryption AlgorithmIdentifier');
  const oid = der.oid(der.expect(oidNode, Tag.OID, 'encryption algorithm'));
  const p12 = PKCS12_PBE[oid];
  if (p12) {
    const [salt, iter] = der.seq(params, 'pkcs-12PbeParams');
    return {
      scheme: 'pkcs12',
      name: p12.name,
      salt: der.octets(der.expect(salt, Tag.OCTET_STRING, 'salt')),
      iterations: iterationCount(iter),
      cipher: p12.cipher,
      ivLen: 8,
    };
  }
  if (oid !== PBE_OIDS.pbes2) throw unsupported('encryption algorithm', oid);
  const [kdf, scheme] = der.seq(params, 'PBES2-params');
  const pbkdf2Params = readPbkdf2(kdf);
  const [encOid, encParams] = der.seq(scheme, 'encryptionScheme');
  const cipherOid = der.oid(der.expect(encOid, Tag.OID, 'encryption scheme'));
  let cipher: Cipher;
  let iv: Uint8Array;
  let cipherName: string;
  if (cipherOid === PBE_OIDS.rc2CBC) {
    // RFC 8018 B.2.3: a version of 160/120/58 stands for 40/64/128 effective bits, >= 256 for itself.
    let version: number | undefined;
    let ivNode: Asn1 | undefined;
    if (encParams?.tag === Tag.SEQUENCE) {
      const parts = der.children(encParams);
      if (parts[0]?.tag === Tag.INTEGER) version = der.smallInt(parts.shift()!, 1 << 20);
      ivNode = parts[0];
    } else ivNode = encParams;
    const bits =
      version === undefined
        ? 32
        : version === 160
          ? 40
          : version === 120
            ? 64
            : version === 58
              ? 128
              : version;
    if (bits < 1 || bits > 1024) throw malformed(`RC2 parameter version ${version}`);
    const keyLen = pbkdf2Params.keyLength ?? 16;
    if (keyLen < 1 || keyLen > 128) throw malformed('RC2 key length');
    cipher = { kind: 'rc2', keyLen, bits, block: 8 };
    iv = der.octets(der.expect(ivNode, Tag.OCTET_STRING, 'RC2 IV'));
    cipherName = `rc2-${bits}-cbc`;
  } else {
    const c = PBES2_CIPHERS[cipherOid];
    if (!c) throw unsupported('PBES2 encryption scheme', cipherOid);
    if (pbkdf2Params.keyLength !== undefined && pbkdf2Params.keyLength !== c.keyLen) {
      throw malformed(`PBKDF2 keyLength ${pbkdf2Params.keyLength} does not fit ${c.name}`);
    }
    cipher = { kind: 'node', ...c };
    iv = der.octets(der.expect(encParams, Tag.OCTET_STRING, 'IV'));
    cipherName = c.name;
  }
  if (iv.length !== cipher.block) throw malformed(`IV of ${iv.length} bytes for ${cipherName}`);
  return {
    scheme: 'pbes2',
    name: `pbes2-${cipherName}-pbkdf2-hmac-${pbkdf2Params.prf}`,
    salt: pbkdf2Params.salt,
    iterations: pbkdf2Params.iterations,
    prf: pbkdf2Params.prf,
    cipher,
    iv,
  };
}

/** PBKDF2 parameters (RFC 8018 A.2), also used by PBMAC1 (RFC 9579). */
export interface Pbkdf2Params {
  readonly salt: Uint8Array;
  readonly iterations: number;
  readonly keyLength?: number;
  readonly prf: HashName;
}

/** Reads a PBKDF2 AlgorithmIdentifier (keyDerivationFunc of PBES2 or PBMAC1). */
export function readPbkdf2(kdf: Asn1 | undefined): Pbkdf2Params {
  const [kdfOid, kdfParams] = der.seq(kdf, 'keyDerivationFunc');
  const oid = der.oid(der.expect(kdfOid, Tag.OID, 'key derivation function'));
  if (oid !== PBE_OIDS.pbkdf2) throw unsupported('key derivation function', oid);
  const parts = der.seq(kdfParams, 'PBKDF2-params');
  const saltNode = parts[0];
  if (saltNode?.tag !== Tag.OCTET_STRING)
    throw new PkiError('ERR_PKI_UNSUPPORTED', 'PBKDF2 salt otherSource');
  const iterations = iterationCount(parts[1]);
  let i = 2;
  let keyLength: number | undefined;
  if (parts[i]?.tag === Tag.INTEGER) keyLength = der.smallInt(parts[i++]!, 1024);
  let prf: HashName = 'sha1';
  if (parts[i]) {
    const [prfOid] = der.seq(parts[i], 'prf');
    const prfName = der.oid(der.expect(prfOid, Tag.OID, 'prf'));
    const h = PRF_OIDS[prfName];
    if (!h) throw unsupported('PBKDF2 PRF', prfName);
    prf = h;
  }
  return {
    salt: der.octets(saltNode),
    iterations,
    ...(keyLength !== undefined ? { keyLength } : {}),
    prf,
  };
}

/**
 * Default budget of key-derivation work for reading one PKCS#12 file or encrypted key, in
 * units of {@link appendixBWork} ("iterations"; pkcs12.ts's header says how a read spends it).
 * The costliest files real producers write are GnuTLS's and NSS's: 600,000 iterations for the
 * MAC and for each of two parts, 1.8 million in all; every other producer stays below 100,000.
 * A unit is 0.3 µs on an idle core here (0.7 µs with the other core busy), so a read stays
 * within about a second however hostile the file, and a count of 10^9 is refused before any
 * derivation. It used to be a cap of 10 million per count: fuzzing found files within it that
 * took seconds (RC2-40 at 10^6 iterations, 1.4 s), and 32 parts at the cap would take minutes.
 */
export const DEFAULT_MAX_ITERATIONS = 2_500_000;

/**
 * What a derivation costs, in units of one hash iteration of the Appendix B KDF with SHA-1
 * (about 0.3 µs here): its iteration count, times the hash blocks it has to produce, times a
 * weight for hashes that cost more per iteration. Measured on this machine (`bench/pkcs12.ts`
 * has the method): Appendix B with SHA-1 or SHA-256 0.27–0.31 µs per iteration (a specialised
 * compression loop), with SHA-224/384/512 1.1–1.2 µs (a native call each, so weight 4);
 * PBKDF2 0.12–0.14 µs per block with SHA-1/224/256 and 0.41 µs with SHA-384/512 (weight 2).
 * Callers add these up against a budget before any derivation runs.
 */
export function appendixBWork(hashName: HashName, iterations: number, bytes: number): number {
  const weight = hashName === 'sha1' || hashName === 'sha256' ? 1 : 4;
  return iterations * Math.ceil(bytes / HASH_SIZES[hashName].u) * weight;
}

/** {@link appendixBWork} for PBKDF2 (RFC 8018 §5.2: one HMAC chain per block of output). */
export function pbkdf2Work(prf: HashName, iterations: number, bytes: number): number {
  const weight = prf === 'sha384' || prf === 'sha512' ? 2 : 1;
  return iterations * Math.ceil(bytes / HASH_SIZES[prf].u) * weight;
}

/** The work {@link pbeDecrypt} does for these parameters: key (and IV) derivation. */
export function pbeWork(params: PbeParams): number {
  if (params.scheme === 'pbes2')
    return pbkdf2Work(params.prf, params.iterations, params.cipher.keyLen);
  return (
    appendixBWork('sha1', params.iterations, params.cipher.keyLen) +
    appendixBWork('sha1', params.iterations, params.ivLen)
  );
}

const SCRYPT_OID = '1.3.6.1.4.1.11591.4.11';
/** PBES1 (RFC 8018 §6.1, Appendix A.3): MD2/MD5/SHA-1 with DES or RC2. */
const PBES1_OIDS = new Set(['1', '3', '4', '6', '10', '11'].map((n) => `1.2.840.113549.1.5.${n}`));

/**
 * The key-derivation work (units of {@link appendixBWork}) of decrypting an
 * EncryptedPrivateKeyInfo with this `encryptionAlgorithm` (RFC 5958 §3), read without any
 * cryptography, or 0 for a scheme that derives nothing we know of (OpenSSL refuses those
 * without work). Node hands these keys to OpenSSL, which derives the key synchronously on the
 * calling thread with the file's own parameters, so the caller checks this first. Covers PBES2
 * with PBKDF2 (the cipher is not checked here: its key is at most 32 bytes) or scrypt (RFC 7914:
 * N × r × p block mixes, each about one unit), the PKCS#12 PBE schemes and PBES1.
 */
export function encryptedKeyWork(algId: Asn1): number {
  const [oidNode, params] = der.seq(algId, 'encryptionAlgorithm');
  const oid = der.oid(der.expect(oidNode, Tag.OID, 'encryption algorithm'));
  if (PKCS12_PBE[oid] || PBES1_OIDS.has(oid)) {
    const [, iter] = der.seq(params, 'PBEParameter');
    // 3DES's 24-byte key and 8-byte IV: three SHA-1 blocks, the most any of these needs.
    return appendixBWork('sha1', iterationCount(iter), 60);
  }
  if (oid !== PBE_OIDS.pbes2) return 0;
  const [kdf] = der.seq(params, 'PBES2-params');
  const [kdfOid, kdfParams] = der.seq(kdf, 'keyDerivationFunc');
  if (der.oid(der.expect(kdfOid, Tag.OID, 'key derivation function')) === SCRYPT_OID) {
    // scrypt-params ::= SEQUENCE { salt OCTET STRING, costParameter, blockSize,
    //   parallelizationParameter INTEGER (1..MAX), keyLength INTEGER (1..MAX) OPTIONAL }
    const [, n, r, p] = der.seq(kdfParams, 'scrypt-params');
    return iterationCount(n) * iterationCount(r) * iterationCount(p);
  }
  const params2 = readPbkdf2(kdf);
  return pbkdf2Work(params2.prf, params2.iterations, params2.keyLength ?? 32);
}

/** An iteration count: a positive INTEGER. Limits are the caller's (checked before any work). */
export function iterationCount(n: Asn1 | undefined): number {
  const x = der.integer(der.expect(n, Tag.INTEGER, 'iteration count'));
  if (x < 1n) throw malformed('iteration count below 1');
  return x > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(x);
}

/** Async PBKDF2 on the libuv thread pool. */
export function pbkdf2Async(
  password: Uint8Array,
  salt: Uint8Array,
  iterations: number,
  keyLen: number,
  prf: HashName,
): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    pbkdf2(password, salt, iterations, keyLen, prf, (err, key) => {
      if (err) reject(new PkiError('ERR_PKI_UNSUPPORTED', `PBKDF2: ${err.message}`));
      else resolve(new Uint8Array(key.buffer, key.byteOffset, key.byteLength));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// RFC 7292 Appendix B.2 key derivation.

/**
 * The PKCS#12 KDF (RFC 7292 Appendix B.2): derives `n` bytes for purpose `id` (1 key, 2 IV,
 * 3 MAC key) from the BMPString password, the salt and the iteration count.
 */
export function pkcs12Kdf(
  hashName: HashName,
  password: Uint8Array,
  salt: Uint8Array,
  id: number,
  iterations: number,
  n: number,
): Uint8Array {
  const { u, v } = HASH_SIZES[hashName];
  const fill = (src: Uint8Array): Uint8Array => {
    const out = new Uint8Array(src.length === 0 ? 0 : v * Math.ceil(src.length / v));
    for (let i = 0; i < out.length; i++) out[i] = src[i % src.length]!;
    return out;
  };
  const d = new Uint8Array(v).fill(id);
  const i = new Uint8Array([...fill(salt), ...fill(password)]);
  const out = new Uint8Array(n);
  const c = Math.ceil(n / u);
  for (let block = 0; block < c; block++) {
    const a = iterateHash(hashName, der.concat([d, i]), iterations);
    out.set(a.subarray(0, Math.min(u, n - block * u)), block * u);
    if (block === c - 1) break;
    // I_j = (I_j + B + 1) mod 2^(8v), where B is A repeated to v bytes.
    const b = new Uint8Array(v);
    for (let k = 0; k < v; k++) b[k] = a[k % u]!;
    for (let j = 0; j < i.length; j += v) {
      let carry = 1;
      for (let k = v - 1; k >= 0; k--) {
        const s = i[j + k]! + b[k]! + carry;
        i[j + k] = s & 0xff;
        carry = s >> 8;
      }
    }
  }
  return out;
}

/** H^count(input): the first hash over the whole input, then `count - 1` hashes of a digest. */
export function iterateHash(hashName: HashName, input: Uint8Array, count: number): Uint8Array {
  const first = hash(hashName, input, 'buffer');
  let a = new Uint8Array(first.buffer, first.byteOffset, first.byteLength);
  if (count <= 1) return a;
  if (hashName === 'sha256') return sha256Iterate(a, count - 1);
  if (hashName === 'sha1') return sha1Iterate(a, count - 1);
  for (let r = 1; r < count; r++) {
    const next = hash(hashName, a, 'buffer');
    a = new Uint8Array(next.buffer, next.byteOffset, next.byteLength);
  }
  return a;
}

/*
 * SHA-1 and SHA-256 (FIPS 180-4) specialised to a message that is exactly one digest long,
 * so each iteration is one compression of a block whose padding is constant. This is what makes
 * the Appendix B KDF cost one compression per iteration, like native code, instead of paying
 * a native call (~1 µs) per iteration. `pkcs12.test.ts` checks both against `crypto.hash`.
 */

const K256 = Int32Array.from([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const H256 = Int32Array.from([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);

function readWords(digest: Uint8Array, words: number): Int32Array {
  const w = new Int32Array(words);
  for (let i = 0; i < words; i++) {
    w[i] =
      (digest[4 * i]! << 24) |
      (digest[4 * i + 1]! << 16) |
      (digest[4 * i + 2]! << 8) |
      digest[4 * i + 3]!;
  }
  return w;
}

function writeWords(h: Int32Array): Uint8Array {
  const out = new Uint8Array(h.length * 4);
  for (let i = 0; i < h.length; i++) {
    const x = h[i]!;
    out[4 * i] = x >>> 24;
    out[4 * i + 1] = x >>> 16;
    out[4 * i + 2] = x >>> 8;
    out[4 * i + 3] = x;
  }
  return out;
}

/** Applies SHA-256 `count` times to a 32-byte message. */
function sha256Iterate(digest: Uint8Array, count: number): Uint8Array {
  const w = new Int32Array(64);
  const h = readWords(digest, 8);
  for (let r = 0; r < count; r++) {
    for (let t = 0; t < 8; t++) w[t] = h[t]!;
    w[8] = 0x80000000 | 0;
    for (let t = 9; t < 15; t++) w[t] = 0;
    w[15] = 256;
    for (let t = 16; t < 64; t++) {
      const x = w[t - 15]!;
      const y = w[t - 2]!;
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[t] = (w[t - 16]! + s0 + w[t - 7]! + s1) | 0;
    }
    let a = H256[0]!;
    let b = H256[1]!;
    let c = H256[2]!;
    let d = H256[3]!;
    let e = H256[4]!;
    let f = H256[5]!;
    let g = H256[6]!;
    let hh = H256[7]!;
    for (let t = 0; t < 64; t++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const ch = (e & f) ^ (~e & g);
      const t1 = (hh + S1 + ch + K256[t]! + w[t]!) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = (S0 + maj) | 0;
      hh = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    h[0] = (H256[0]! + a) | 0;
    h[1] = (H256[1]! + b) | 0;
    h[2] = (H256[2]! + c) | 0;
    h[3] = (H256[3]! + d) | 0;
    h[4] = (H256[4]! + e) | 0;
    h[5] = (H256[5]! + f) | 0;
    h[6] = (H256[6]! + g) | 0;
    h[7] = (H256[7]! + hh) | 0;
  }
  return writeWords(h);
}

/** Applies SHA-1 `count` times to a 20-byte message. */
function sha1Iterate(digest: Uint8Array, count: number): Uint8Array {
  const w = new Int32Array(80);
  const h = readWords(digest, 5);
  for (let r = 0; r < count; r++) {
    for (let t = 0; t < 5; t++) w[t] = h[t]!;
    w[5] = 0x80000000 | 0;
    for (let t = 6; t < 15; t++) w[t] = 0;
    w[15] = 160;
    for (let t = 16; t < 80; t++) {
      const x = w[t - 3]! ^ w[t - 8]! ^ w[t - 14]! ^ w[t - 16]!;
      w[t] = (x << 1) | (x >>> 31);
    }
    let a = 0x67452301 | 0;
    let b = 0xefcdab89 | 0;
    let c = 0x98badcfe | 0;
    let d = 0x10325476 | 0;
    let e = 0xc3d2e1f0 | 0;
    for (let t = 0; t < 80; t++) {
      let f: number;
      let k: number;
      if (t < 20) {
        f = (b & c) | (~b & d);
        k = 0x5a827999;
      } else if (t < 40) {
        f = b ^ c ^ d;
        k = 0x6ed9eba1;
      } else if (t < 60) {
        f = (b & c) | (b & d) | (c & d);
        k = 0x8f1bbcdc | 0;
      } else {
        f = b ^ c ^ d;
        k = 0xca62c1d6 | 0;
      }
      const tmp = (((a << 5) | (a >>> 27)) + f + e + k + w[t]!) | 0;
      e = d;
      d = c;
      c = (b << 30) | (b >>> 2);
      b = a;
      a = tmp;
    }
    h[0] = (0x67452301 + a) | 0;
    h[1] = (0xefcdab89 + b) | 0;
    h[2] = (0x98badcfe + c) | 0;
    h[3] = (0x10325476 + d) | 0;
    h[4] = (0xc3d2e1f0 + e) | 0;
  }
  return writeWords(h);
}

// ---------------------------------------------------------------------------------------------
// Decryption and encryption.

/** Thrown for every decryption failure, whatever the cause (one message, no oracle). */
export function decryptFailed(): PkiError {
  return new PkiError('ERR_PKI_BAD_PASSWORD', 'cannot decrypt');
}

async function deriveKeyIv(
  params: PbeParams,
  password: PasswordBytes,
): Promise<{ key: Uint8Array; iv: Uint8Array }> {
  if (params.scheme === 'pbes2') {
    const key = await pbkdf2Async(
      password.utf8,
      params.salt,
      params.iterations,
      params.cipher.keyLen,
      params.prf,
    );
    return { key, iv: params.iv };
  }
  const key = pkcs12Kdf(
    'sha1',
    password.bmp,
    params.salt,
    KDF_ID.key,
    params.iterations,
    params.cipher.keyLen,
  );
  const iv = pkcs12Kdf(
    'sha1',
    password.bmp,
    params.salt,
    KDF_ID.iv,
    params.iterations,
    params.ivLen,
  );
  return { key, iv };
}

/**
 * Decrypts `data` and removes the PKCS#5 padding (RFC 8018 §6.1.1 step 4). Any failure is
 * {@link decryptFailed}.
 */
export async function pbeDecrypt(
  params: PbeParams,
  password: PasswordBytes,
  data: Uint8Array,
): Promise<Uint8Array> {
  const { key, iv } = await deriveKeyIv(params, password);
  const block = params.cipher.block;
  if (data.length === 0 || data.length % block) throw decryptFailed();
  let plain: Uint8Array;
  try {
    if (params.cipher.kind === 'rc2') plain = rc2CbcDecrypt(key, params.cipher.bits, iv, data);
    else {
      const d = createDecipheriv(params.cipher.name, key, iv).setAutoPadding(false);
      plain = der.concat([d.update(data), d.final()]);
    }
  } catch {
    throw decryptFailed();
  }
  // Check every padding byte without an early exit, then fail once.
  const pad = plain[plain.length - 1]!;
  let bad = pad === 0 || pad > block ? 1 : 0;
  const n = Math.min(pad, block);
  for (let i = 1; i <= n; i++) bad |= plain[plain.length - i]! ^ pad;
  if (bad) throw decryptFailed();
  return plain.subarray(0, plain.length - pad);
}

/** Encrypts with PKCS#5 padding. */
export async function pbeEncrypt(
  params: PbeParams,
  password: PasswordBytes,
  data: Uint8Array,
): Promise<Uint8Array> {
  const { key, iv } = await deriveKeyIv(params, password);
  const block = params.cipher.block;
  const pad = block - (data.length % block);
  const padded = der.concat([data, new Uint8Array(pad).fill(pad)]);
  if (params.cipher.kind === 'rc2') return rc2CbcEncrypt(key, params.cipher.bits, iv, padded);
  const c = createCipheriv(params.cipher.name, key, iv).setAutoPadding(false);
  return der.concat([c.update(padded), c.final()]);
}

/** Parameters for writing: PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC (OpenSSL 3's default). */
export function pbes2Aes256Params(iterations: number): PbeParams & { scheme: 'pbes2' } {
  return {
    scheme: 'pbes2',
    name: 'pbes2-aes-256-cbc-pbkdf2-hmac-sha256',
    salt: new Uint8Array(randomBytes(16)),
    iterations,
    prf: 'sha256',
    cipher: { kind: 'node', name: 'aes-256-cbc', keyLen: 32, block: 16 },
    iv: new Uint8Array(randomBytes(16)),
  };
}

/** Parameters for writing: pbeWithSHAAnd3-KeyTripleDES-CBC (RFC 7292 Appendix C). */
export function pbeSha13DesParams(iterations: number): PbeParams & { scheme: 'pkcs12' } {
  return {
    scheme: 'pkcs12',
    name: 'pbe-sha1-3des',
    salt: new Uint8Array(randomBytes(8)),
    iterations,
    cipher: { kind: 'node', name: 'des-ede3-cbc', keyLen: 24, block: 8 },
    ivLen: 8,
  };
}

/** Encodes {@link PbeParams} as an AlgorithmIdentifier (the inverse of {@link parsePbe}). */
export function encodePbe(params: PbeParams): Uint8Array {
  if (params.scheme === 'pkcs12') {
    const oid = Object.entries(PKCS12_PBE).find(([, v]) => v?.name === params.name)?.[0];
    if (!oid) throw new PkiError('ERR_PKI_INVALID_ARGUMENT', params.name);
    return enc.seq(enc.oid(oid), enc.seq(enc.octets(params.salt), enc.int(params.iterations)));
  }
  if (params.cipher.kind !== 'node')
    throw new PkiError('ERR_PKI_INVALID_ARGUMENT', 'RC2 is read-only');
  const name = params.cipher.name;
  const cipherOid = Object.entries(PBES2_CIPHERS).find(([, v]) => v?.name === name)?.[0];
  const prfOid = Object.entries(PRF_OIDS).find(([, v]) => v === params.prf)?.[0];
  if (!cipherOid || !prfOid) throw new PkiError('ERR_PKI_INVALID_ARGUMENT', params.name);
  return enc.seq(
    enc.oid(PBE_OIDS.pbes2),
    enc.seq(
      enc.seq(
        enc.oid(PBE_OIDS.pbkdf2),
        enc.seq(
          enc.octets(params.salt),
          enc.int(params.iterations),
          enc.seq(enc.oid(prfOid), enc.null()),
        ),
      ),
      enc.seq(enc.oid(cipherOid), enc.octets(params.iv)),
    ),
  );
}
