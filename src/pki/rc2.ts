/**
 * RC2 block cipher (RFC 2268) in CBC mode, for reading legacy PKCS#12 files.
 *
 * Contract: {@link rc2CbcDecrypt} and {@link rc2CbcEncrypt} transform whole 8-byte blocks with
 * the given key, effective key bits (RFC 2268 §2, "T1") and IV. Padding is the caller's
 * business (the PBE layer removes PKCS#5 padding uniformly for every cipher).
 *
 * Why a pure implementation: `openssl pkcs12 -export -legacy`, Windows XP-era exports and many
 * Java/NSS files encrypt the certificate bag with `pbeWithSHAAnd40BitRC2-CBC` (RFC 7292
 * Appendix C). Node's OpenSSL 3 offers RC2 only through the legacy provider, which we do not
 * enable process-wide. RC2 is small (a key schedule and 16-bit word arithmetic), is only ever
 * used here to open old files (we never write it, except in tests), and is checked against
 * RFC 2268 §5's test vectors and against `openssl enc` with the legacy provider
 * (`rc2.test.ts`). It is not constant time; it protects nothing a 40-bit key does not already
 * give away.
 */
import { PkiError } from './errors.ts';

/** RFC 2268 §2: the "PITABLE", a permutation of 0..255 derived from the digits of pi. */
const PITABLE = Uint8Array.from(
  Buffer.from(
    'd978f9c419ddb5ed28e9fd794aa0d89dc67e37832b76538e624c6488448bfba2' +
      '179a59f587b34f1361456d8d09817d32bd8f40eb86b77b0bf09521225c6b4e82' +
      '54d66593ce60b21c7356c014a78cf1dc1275ca1f3bbee4d1423dd430a33cb626' +
      '6fbf0eda4669075727f21d9bbc944303f811c7f690ef3ee706c3d52fc8661ed7' +
      '08e8eade8052eef784aa72ac354d6a2a961ad2715a1549744b9fd05e0418a4ec' +
      'c2e0416e0f51cbcc2491af50a1f47039997c3a8523b8b47afc02365b25559731' +
      '2d5dfa98e38a92ae05df2910676cbac9d300e6cfe19ea82c6316013f58e289a9' +
      '0d38341bab33ffb0bb480c5fb9b1cd2ec5f3db47e5a59c770aa62068fe7fc1ad',
    'hex',
  ),
);

/**
 * RFC 2268 §2 key expansion: 1–128 key bytes and 1–1024 effective bits give 64 16-bit words.
 */
export function rc2ExpandKey(key: Uint8Array, effectiveBits: number): Uint16Array {
  const t = key.length;
  if (
    t < 1 ||
    t > 128 ||
    !Number.isInteger(effectiveBits) ||
    effectiveBits < 1 ||
    effectiveBits > 1024
  ) {
    throw new PkiError(
      'ERR_PKI_INVALID_ARGUMENT',
      'RC2 key of 1-128 bytes and 1-1024 effective bits',
    );
  }
  const l = new Uint8Array(128);
  l.set(key);
  for (let i = t; i < 128; i++) l[i] = PITABLE[(l[i - 1]! + l[i - t]!) & 0xff]!;
  const t8 = (effectiveBits + 7) >> 3;
  const tm = 0xff >> (8 * t8 - effectiveBits);
  l[128 - t8] = PITABLE[l[128 - t8]! & tm]!;
  for (let i = 127 - t8; i >= 0; i--) l[i] = PITABLE[l[i + 1]! ^ l[i + t8]!]!;
  const k = new Uint16Array(64);
  for (let i = 0; i < 64; i++) k[i] = l[2 * i]! | (l[2 * i + 1]! << 8);
  return k;
}

/** Encrypts one block in place (RFC 2268 §3). `off` is the block's offset in `b`. */
export function rc2EncryptBlock(k: Uint16Array, b: Uint8Array, off: number): void {
  let r0 = b[off]! | (b[off + 1]! << 8);
  let r1 = b[off + 2]! | (b[off + 3]! << 8);
  let r2 = b[off + 4]! | (b[off + 5]! << 8);
  let r3 = b[off + 6]! | (b[off + 7]! << 8);
  let j = 0;
  for (let round = 0; round < 16; round++) {
    // Mixing round: R[i] += K[j++] + (R[i-1] & R[i-2]) + (~R[i-1] & R[i-3]); R[i] rol= s[i].
    r0 = (r0 + k[j++]! + (r3 & r2) + (~r3 & r1)) & 0xffff;
    r0 = ((r0 << 1) | (r0 >> 15)) & 0xffff;
    r1 = (r1 + k[j++]! + (r0 & r3) + (~r0 & r2)) & 0xffff;
    r1 = ((r1 << 2) | (r1 >> 14)) & 0xffff;
    r2 = (r2 + k[j++]! + (r1 & r0) + (~r1 & r3)) & 0xffff;
    r2 = ((r2 << 3) | (r2 >> 13)) & 0xffff;
    r3 = (r3 + k[j++]! + (r2 & r1) + (~r2 & r0)) & 0xffff;
    r3 = ((r3 << 5) | (r3 >> 11)) & 0xffff;
    if (round === 4 || round === 10) {
      // Mashing round: R[i] += K[R[i-1] & 63].
      r0 = (r0 + k[r3 & 63]!) & 0xffff;
      r1 = (r1 + k[r0 & 63]!) & 0xffff;
      r2 = (r2 + k[r1 & 63]!) & 0xffff;
      r3 = (r3 + k[r2 & 63]!) & 0xffff;
    }
  }
  storeBlock(b, off, r0, r1, r2, r3);
}

/** Decrypts one block in place (RFC 2268 §4). */
export function rc2DecryptBlock(k: Uint16Array, b: Uint8Array, off: number): void {
  let r0 = b[off]! | (b[off + 1]! << 8);
  let r1 = b[off + 2]! | (b[off + 3]! << 8);
  let r2 = b[off + 4]! | (b[off + 5]! << 8);
  let r3 = b[off + 6]! | (b[off + 7]! << 8);
  let j = 63;
  for (let round = 15; round >= 0; round--) {
    // R-mixing round, R[3] first: R[i] ror= s[i]; R[i] -= K[j--] + (R[i-1] & R[i-2]) + (~R[i-1] & R[i-3]).
    r3 = ((r3 >> 5) | (r3 << 11)) & 0xffff;
    r3 = (r3 - k[j--]! - (r2 & r1) - (~r2 & r0)) & 0xffff;
    r2 = ((r2 >> 3) | (r2 << 13)) & 0xffff;
    r2 = (r2 - k[j--]! - (r1 & r0) - (~r1 & r3)) & 0xffff;
    r1 = ((r1 >> 2) | (r1 << 14)) & 0xffff;
    r1 = (r1 - k[j--]! - (r0 & r3) - (~r0 & r2)) & 0xffff;
    r0 = ((r0 >> 1) | (r0 << 15)) & 0xffff;
    r0 = (r0 - k[j--]! - (r3 & r2) - (~r3 & r1)) & 0xffff;
    if (round === 11 || round === 5) {
      // R-mashing round: R[i] -= K[R[i-1] & 63].
      r3 = (r3 - k[r2 & 63]!) & 0xffff;
      r2 = (r2 - k[r1 & 63]!) & 0xffff;
      r1 = (r1 - k[r0 & 63]!) & 0xffff;
      r0 = (r0 - k[r3 & 63]!) & 0xffff;
    }
  }
  storeBlock(b, off, r0, r1, r2, r3);
}

/** Writes the four 16-bit words R[0..3] back as a block, little-endian (RFC 2268 §3). */
function storeBlock(
  b: Uint8Array,
  off: number,
  r0: number,
  r1: number,
  r2: number,
  r3: number,
): void {
  b[off] = r0;
  b[off + 1] = r0 >> 8;
  b[off + 2] = r1;
  b[off + 3] = r1 >> 8;
  b[off + 4] = r2;
  b[off + 5] = r2 >> 8;
  b[off + 6] = r3;
  b[off + 7] = r3 >> 8;
}

function checkCbc(iv: Uint8Array, data: Uint8Array): void {
  if (iv.length !== 8) throw new PkiError('ERR_PKI_MALFORMED', 'RC2-CBC needs an 8-byte IV');
  if (data.length % 8) throw new PkiError('ERR_PKI_MALFORMED', 'RC2-CBC input is not whole blocks');
}

/** RC2-CBC decryption of whole blocks; returns a new array, padding left in place. */
export function rc2CbcDecrypt(
  key: Uint8Array,
  effectiveBits: number,
  iv: Uint8Array,
  data: Uint8Array,
): Uint8Array {
  checkCbc(iv, data);
  const k = rc2ExpandKey(key, effectiveBits);
  const out = Uint8Array.from(data);
  let prev = iv;
  for (let off = 0; off < out.length; off += 8) {
    rc2DecryptBlock(k, out, off);
    for (let i = 0; i < 8; i++) out[off + i]! ^= prev[i]!;
    prev = data.subarray(off, off + 8);
  }
  return out;
}

/** RC2-CBC encryption of whole blocks (the caller pads). */
export function rc2CbcEncrypt(
  key: Uint8Array,
  effectiveBits: number,
  iv: Uint8Array,
  data: Uint8Array,
): Uint8Array {
  checkCbc(iv, data);
  const k = rc2ExpandKey(key, effectiveBits);
  const out = Uint8Array.from(data);
  for (let off = 0; off < out.length; off += 8) {
    for (let i = 0; i < 8; i++) out[off + i]! ^= off === 0 ? iv[i]! : out[off - 8 + i]!;
    rc2EncryptBlock(k, out, off);
  }
  return out;
}
