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

// FIPS 46-3 tables, bit positions 1-based with bit 1 the most significant. IP, FP and E are
// not tables here: cryptBlock computes them with shifts (see there).
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

/** The 16 round keys, each as eight 6-bit groups (K1 first). */
export function desKeySchedule(key: Uint8Array): Uint8Array[] {
  if (key.length !== 8) throw new PkiError('ERR_PKI_INVALID_ARGUMENT', 'a DES key has 8 bytes');
  const hi = ((key[0]! << 24) | (key[1]! << 16) | (key[2]! << 8) | key[3]!) >>> 0;
  const lo = ((key[4]! << 24) | (key[5]! << 16) | (key[6]! << 8) | key[7]!) >>> 0;
  // C and D as 28-bit integers (bit 1 of each half most significant).
  let c = 0;
  let d = 0;
  for (let i = 0; i < 28; i++) c = (c << 1) | bit64(hi, lo, PC1[i]!);
  for (let i = 28; i < 56; i++) d = (d << 1) | bit64(hi, lo, PC1[i]!);
  const keys: Uint8Array[] = [];
  for (const s of SHIFTS) {
    c = ((c << s) | (c >>> (28 - s))) & 0xfffffff;
    d = ((d << s) | (d >>> (28 - s))) & 0xfffffff;
    const k = new Uint8Array(8);
    for (let g = 0; g < 8; g++) {
      let v = 0;
      for (let j = 0; j < 6; j++) {
        const p = PC2[g * 6 + j]!;
        v = (v << 1) | (p <= 28 ? (c >>> (28 - p)) & 1 : (d >>> (56 - p)) & 1);
      }
      k[g] = v;
    }
    keys.push(k);
  }
  return keys;
}

/** The schedule as one flat array of 16 × 8 six-bit groups (what {@link cryptBlock} reads). */
function flatSchedule(schedule: readonly Uint8Array[]): Uint8Array {
  const flat = new Uint8Array(128);
  schedule.forEach((k, i) => flat.set(k, i * 8));
  return flat;
}

const SP0 = SP[0]!;
const SP1 = SP[1]!;
const SP2 = SP[2]!;
const SP3 = SP[3]!;
const SP4 = SP[4]!;
const SP5 = SP[5]!;
const SP6 = SP[6]!;
const SP7 = SP[7]!;

/**
 * Encrypts (or, with the schedule reversed, decrypts) one block in place at `offset`.
 *
 * IP and FP are computed with the usual five swap-moves (each one its own inverse, so FP runs
 * them in reverse order), and the expansion E reads each 6-bit group straight out of R rotated
 * right by one bit: group g is bits 4g…4g+5 (1-based, bit 0 = bit 32), group 7 wraps around.
 */
function cryptBlock(keys: Uint8Array, buf: Uint8Array, offset: number): void {
  let l =
    (buf[offset]! << 24) | (buf[offset + 1]! << 16) | (buf[offset + 2]! << 8) | buf[offset + 3]!;
  let r =
    (buf[offset + 4]! << 24) |
    (buf[offset + 5]! << 16) |
    (buf[offset + 6]! << 8) |
    buf[offset + 7]!;
  let t = ((l >>> 4) ^ r) & 0x0f0f0f0f;
  r ^= t;
  l ^= t << 4;
  t = ((l >>> 16) ^ r) & 0x0000ffff;
  r ^= t;
  l ^= t << 16;
  t = ((r >>> 2) ^ l) & 0x33333333;
  l ^= t;
  r ^= t << 2;
  t = ((r >>> 8) ^ l) & 0x00ff00ff;
  l ^= t;
  r ^= t << 8;
  t = ((l >>> 1) ^ r) & 0x55555555;
  r ^= t;
  l ^= t << 1;
  for (let k = 0; k < 128; k += 8) {
    const rr = (r >>> 1) | (r << 31);
    const f =
      SP0[((rr >>> 26) & 0x3f) ^ keys[k]!]! ^
      SP1[((rr >>> 22) & 0x3f) ^ keys[k + 1]!]! ^
      SP2[((rr >>> 18) & 0x3f) ^ keys[k + 2]!]! ^
      SP3[((rr >>> 14) & 0x3f) ^ keys[k + 3]!]! ^
      SP4[((rr >>> 10) & 0x3f) ^ keys[k + 4]!]! ^
      SP5[((rr >>> 6) & 0x3f) ^ keys[k + 5]!]! ^
      SP6[((rr >>> 2) & 0x3f) ^ keys[k + 6]!]! ^
      SP7[(((r << 1) | (r >>> 31)) & 0x3f) ^ keys[k + 7]!]!;
    const next = l ^ f;
    l = r;
    r = next;
  }
  // The last round's halves are not swapped (FIPS 46-3 §3: the preoutput block is R16 L16).
  t = l;
  l = r;
  r = t;
  t = ((l >>> 1) ^ r) & 0x55555555;
  r ^= t;
  l ^= t << 1;
  t = ((r >>> 8) ^ l) & 0x00ff00ff;
  l ^= t;
  r ^= t << 8;
  t = ((r >>> 2) ^ l) & 0x33333333;
  l ^= t;
  r ^= t << 2;
  t = ((l >>> 16) ^ r) & 0x0000ffff;
  r ^= t;
  l ^= t << 16;
  t = ((l >>> 4) ^ r) & 0x0f0f0f0f;
  r ^= t;
  l ^= t << 4;
  buf[offset] = l >>> 24;
  buf[offset + 1] = l >>> 16;
  buf[offset + 2] = l >>> 8;
  buf[offset + 3] = l;
  buf[offset + 4] = r >>> 24;
  buf[offset + 5] = r >>> 16;
  buf[offset + 6] = r >>> 8;
  buf[offset + 7] = r;
}

// Copies with Uint8Array.from: the callers' Buffers would make `slice` a view, not a copy.

/** Encrypts one 8-byte block (ECB; for the published test vectors). */
export function desEncryptBlock(key: Uint8Array, block: Uint8Array): Uint8Array {
  const out = Uint8Array.from(checkBlocks(block));
  cryptBlock(flatSchedule(desKeySchedule(key)), out, 0);
  return out;
}

/** Decrypts one 8-byte block (ECB). */
export function desDecryptBlock(key: Uint8Array, block: Uint8Array): Uint8Array {
  const out = Uint8Array.from(checkBlocks(block));
  cryptBlock(flatSchedule(desKeySchedule(key).toReversed()), out, 0);
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
  const schedule = flatSchedule(desKeySchedule(key).toReversed());
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
  const schedule = flatSchedule(desKeySchedule(key));
  const out = Uint8Array.from(checkBlocks(data));
  for (let o = 0; o < out.length; o += 8) {
    const prev = o === 0 ? iv : out.subarray(o - 8, o);
    for (let i = 0; i < 8; i++) out[o + i] = out[o + i]! ^ prev[i]!;
    cryptBlock(schedule, out, o);
  }
  return out;
}
