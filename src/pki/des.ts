/**
 * DES block cipher (FIPS 46-3) in CBC mode, for opening legacy SCEP envelopes.
 *
 * Contract: {@link desCbcDecrypt} and {@link desCbcEncrypt} transform whole 8-byte blocks with
 * an 8-byte key and an 8-byte IV. Key parity bits are ignored (as FIPS 46-3 §2 allows).
 * Padding is the caller's business (cms.ts removes PKCS#7 padding uniformly for every cipher).
 *
 * Why a pure implementation: micromdm `scepclient` 2.1.0 always encrypts its pkcsPKIEnvelope
 * with single DES-CBC (OID 1.3.14.3.2.7), and Cisco IOS does too. Node's OpenSSL 3 offers
 * `des-cbc` only through the legacy provider, which we do not load (design.md §3). RFC 8894
 * §3.5.2 says single DES MUST NOT be used; we therefore only ever *decrypt* it, and answer such
 * a request with AES or 3DES (scep/message.ts, `replyCipher`). Encryption exists for tests.
 * Checked against the FIPS/NBS published vectors and against `openssl enc -des-cbc` with the
 * legacy provider (`des.test.ts`). It is not constant time; a 56-bit key protects nothing a
 * timing side channel would add to.
 */
import { PkiError } from './errors.ts';

// FIPS 46-3 tables, bit positions 1-based with bit 1 the most significant.
const IP = [
  58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4, 62, 54, 46, 38, 30, 22, 14, 6, 64,
  56, 48, 40, 32, 24, 16, 8, 57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3, 61, 53,
  45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7,
];
const E = [
  32, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9, 8, 9, 10, 11, 12, 13, 12, 13, 14, 15, 16, 17, 16, 17, 18, 19,
  20, 21, 20, 21, 22, 23, 24, 25, 24, 25, 26, 27, 28, 29, 28, 29, 30, 31, 32, 1,
];
const P = [
  16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10, 2, 8, 24, 14, 32, 27, 3, 9, 19, 13,
  30, 6, 22, 11, 4, 25,
];
const PC1 = [
  57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18, 10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60,
  52, 44, 36, 63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22, 14, 6, 61, 53, 45, 37, 29, 21,
  13, 5, 28, 20, 12, 4,
];
const PC2 = [
  14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10, 23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2, 41, 52,
  31, 37, 47, 55, 30, 40, 51, 45, 33, 48, 44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
];
const SHIFTS = [1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1];
const S = [
  '14 4 13 1 2 15 11 8 3 10 6 12 5 9 0 7 0 15 7 4 14 2 13 1 10 6 12 11 9 5 3 8 4 1 14 8 13 6 2 11 15 12 9 7 3 10 5 0 15 12 8 2 4 9 1 7 5 11 3 14 10 0 6 13',
  '15 1 8 14 6 11 3 4 9 7 2 13 12 0 5 10 3 13 4 7 15 2 8 14 12 0 1 10 6 9 11 5 0 14 7 11 10 4 13 1 5 8 12 6 9 3 2 15 13 8 10 1 3 15 4 2 11 6 7 12 0 5 14 9',
  '10 0 9 14 6 3 15 5 1 13 12 7 11 4 2 8 13 7 0 9 3 4 6 10 2 8 5 14 12 11 15 1 13 6 4 9 8 15 3 0 11 1 2 12 5 10 14 7 1 10 13 0 6 9 8 7 4 15 14 3 11 5 2 12',
  '7 13 14 3 0 6 9 10 1 2 8 5 11 12 4 15 13 8 11 5 6 15 0 3 4 7 2 12 1 10 14 9 10 6 9 0 12 11 7 13 15 1 3 14 5 2 8 4 3 15 0 6 10 1 13 8 9 4 5 11 12 7 2 14',
  '2 12 4 1 7 10 11 6 8 5 3 15 13 0 14 9 14 11 2 12 4 7 13 1 5 0 15 10 3 9 8 6 4 2 1 11 10 13 7 8 15 9 12 5 6 3 0 14 11 8 12 7 1 14 2 13 6 15 0 9 10 4 5 3',
  '12 1 10 15 9 2 6 8 0 13 3 4 14 7 5 11 10 15 4 2 7 12 9 5 6 1 13 14 0 11 3 8 9 14 15 5 2 8 12 3 7 0 4 10 1 13 11 6 4 3 2 12 9 5 15 10 11 14 1 7 6 0 8 13',
  '4 11 2 14 15 0 8 13 3 12 9 7 5 10 6 1 13 0 11 7 4 9 1 10 14 3 5 12 2 15 8 6 1 4 11 13 12 3 7 14 10 15 6 8 0 5 9 2 6 11 13 8 1 4 10 7 9 5 0 15 14 2 3 12',
  '13 2 8 4 6 15 11 1 10 9 3 14 5 0 12 7 1 15 13 8 10 3 7 4 12 5 6 11 0 14 9 2 7 11 4 1 9 12 14 2 0 6 10 13 15 3 5 8 2 1 14 7 4 10 8 13 15 12 9 0 3 5 6 11',
].map((s) => s.split(' ').map(Number));

/** FP = IP⁻¹. */
const FP = Array.from({ length: 64 }, (_, i) => IP.indexOf(i + 1) + 1);

/**
 * SP[i][x]: the S-box i output for the 6-bit input x, already placed at its nibble and run
 * through P, so one round's f-function is eight lookups XORed together.
 */
const SP: Uint32Array[] = S.map((box, i) => {
  const t = new Uint32Array(64);
  for (let x = 0; x < 64; x++) {
    const row = ((x >> 4) & 2) | (x & 1);
    const col = (x >> 1) & 15;
    const s = box[row * 16 + col]! << (28 - 4 * i);
    let out = 0;
    for (let j = 0; j < 32; j++) if ((s >>> (32 - P[j]!)) & 1) out |= 1 << (31 - j);
    t[x] = out >>> 0;
  }
  return t;
});

/** Bit `pos` (1-based, MSB first) of the 64-bit value hi:lo. */
function bit64(hi: number, lo: number, pos: number): number {
  return pos <= 32 ? (hi >>> (32 - pos)) & 1 : (lo >>> (64 - pos)) & 1;
}

/** Applies a 64→64 permutation to hi:lo. */
function permute64(hi: number, lo: number, table: readonly number[]): [number, number] {
  let h = 0;
  let l = 0;
  for (let i = 0; i < 32; i++) h = (h << 1) | bit64(hi, lo, table[i]!);
  for (let i = 32; i < 64; i++) l = (l << 1) | bit64(hi, lo, table[i]!);
  return [h >>> 0, l >>> 0];
}

/** The 16 round keys, each as eight 6-bit groups (K1 first). */
export function desKeySchedule(key: Uint8Array): Uint8Array[] {
  if (key.length !== 8) throw new PkiError('ERR_PKI_INVALID_ARGUMENT', 'a DES key has 8 bytes');
  const hi = ((key[0]! << 24) | (key[1]! << 16) | (key[2]! << 8) | key[3]!) >>> 0;
  const lo = ((key[4]! << 24) | (key[5]! << 16) | (key[6]! << 8) | key[7]!) >>> 0;
  const cd = PC1.map((p) => bit64(hi, lo, p));
  let c = cd.slice(0, 28);
  let d = cd.slice(28);
  const keys: Uint8Array[] = [];
  for (const s of SHIFTS) {
    c = [...c.slice(s), ...c.slice(0, s)];
    d = [...d.slice(s), ...d.slice(0, s)];
    const both = [...c, ...d];
    const k = new Uint8Array(8);
    for (let g = 0; g < 8; g++) {
      let v = 0;
      for (let j = 0; j < 6; j++) v = (v << 1) | both[PC2[g * 6 + j]! - 1]!;
      k[g] = v;
    }
    keys.push(k);
  }
  return keys;
}

/** Encrypts (or, with the schedule reversed, decrypts) one block in place at `offset`. */
function cryptBlock(schedule: readonly Uint8Array[], buf: Uint8Array, offset: number): void {
  const hi = ((buf[offset]! << 24) | (buf[offset + 1]! << 16) | (buf[offset + 2]! << 8)) >>> 0;
  const inHi = (hi | buf[offset + 3]!) >>> 0;
  const inLo =
    ((buf[offset + 4]! << 24) |
      (buf[offset + 5]! << 16) |
      (buf[offset + 6]! << 8) |
      buf[offset + 7]!) >>>
    0;
  let [l, r] = permute64(inHi, inLo, IP);
  for (const k of schedule) {
    let f = 0;
    for (let g = 0; g < 8; g++) {
      let x = 0;
      for (let j = 0; j < 6; j++) x = (x << 1) | ((r >>> (32 - E[g * 6 + j]!)) & 1);
      f ^= SP[g]![x ^ k[g]!]!;
    }
    const next = (l ^ f) >>> 0;
    l = r;
    r = next;
  }
  // The last round's halves are not swapped (FIPS 46-3 §3: the preoutput block is R16 L16).
  const [oh, ol] = permute64(r, l, FP);
  buf[offset] = oh >>> 24;
  buf[offset + 1] = oh >>> 16;
  buf[offset + 2] = oh >>> 8;
  buf[offset + 3] = oh;
  buf[offset + 4] = ol >>> 24;
  buf[offset + 5] = ol >>> 16;
  buf[offset + 6] = ol >>> 8;
  buf[offset + 7] = ol;
}

// Copies with Uint8Array.from: the callers' Buffers would make `slice` a view, not a copy.

/** Encrypts one 8-byte block (ECB; for the published test vectors). */
export function desEncryptBlock(key: Uint8Array, block: Uint8Array): Uint8Array {
  const out = Uint8Array.from(checkBlocks(block));
  cryptBlock(desKeySchedule(key), out, 0);
  return out;
}

/** Decrypts one 8-byte block (ECB). */
export function desDecryptBlock(key: Uint8Array, block: Uint8Array): Uint8Array {
  const out = Uint8Array.from(checkBlocks(block));
  cryptBlock(desKeySchedule(key).toReversed(), out, 0);
  return out;
}

function checkBlocks(data: Uint8Array): Uint8Array {
  if (data.length % 8 !== 0)
    throw new PkiError('ERR_PKI_INVALID_ARGUMENT', 'DES input is not a multiple of 8 bytes');
  return data;
}

function checkIv(iv: Uint8Array): void {
  if (iv.length !== 8) throw new PkiError('ERR_PKI_INVALID_ARGUMENT', 'a DES IV has 8 bytes');
}

/** DES-CBC decryption of whole blocks; no padding is removed. */
export function desCbcDecrypt(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  checkIv(iv);
  const schedule = desKeySchedule(key).toReversed();
  const out = Uint8Array.from(checkBlocks(data));
  for (let o = 0; o < out.length; o += 8) {
    cryptBlock(schedule, out, o);
    const prev = o === 0 ? iv : data.subarray(o - 8, o);
    for (let i = 0; i < 8; i++) out[o + i] = out[o + i]! ^ prev[i]!;
  }
  return out;
}

/** DES-CBC encryption of whole blocks; no padding is added. Used by tests only. */
export function desCbcEncrypt(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  checkIv(iv);
  const schedule = desKeySchedule(key);
  const out = Uint8Array.from(checkBlocks(data));
  for (let o = 0; o < out.length; o += 8) {
    const prev = o === 0 ? iv : out.subarray(o - 8, o);
    for (let i = 0; i < 8; i++) out[o + i] = out[o + i]! ^ prev[i]!;
    cryptBlock(schedule, out, o);
  }
  return out;
}
