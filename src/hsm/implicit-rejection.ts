/**
 * The synthetic message of RSAES-PKCS1-v1_5 implicit rejection (draft-irtf-cfrg-rsa-guidance,
 * "Implicit rejection"; OpenSSL 3.2+ `ossl_rsa_padding_check_PKCS1_type_2`), for tokens that
 * report a padding failure as an error instead of returning a synthetic message themselves.
 *
 * The draft keys the derivation with a hash of the private exponent, which a token never
 * reveals. Here the key-derivation key comes from the token instead: `KDK = HMAC-SHA256(S, C)`
 * computed inside the token with a per-key secret `S` that cannot leave it (pkcs11.ts). From
 * the KDK on, this follows the draft: the length is chosen by the PRF among
 * `0 … k − 11` octets and the message is the PRF's output, so a caller cannot tell a
 * rejected ciphertext from one that decrypted to random-looking bytes.
 */
import { createHmac } from 'node:crypto';

/** Candidate lengths drawn from the PRF (the draft's and OpenSSL's MAX_LEN_GEN_TRIES). */
const LENGTH_CANDIDATES = 128;

/**
 * The draft's IRPRF: `T(i) = HMAC-SHA256(KDK, I2OSP(i, 2) || label || I2OSP(bits, 2))`,
 * concatenated and truncated to `bytes` octets.
 */
export function irPrf(kdk: Uint8Array, label: string, bytes: number, bits = bytes * 8): Buffer {
  const blocks: Buffer[] = [];
  const tail = Buffer.alloc(2);
  tail.writeUInt16BE(bits & 0xffff);
  for (let i = 0, have = 0; have < bytes; i++, have += 32) {
    const counter = Buffer.alloc(2);
    counter.writeUInt16BE(i);
    blocks.push(
      createHmac('sha256', kdk)
        .update(counter)
        .update(Buffer.from(label, 'latin1'))
        .update(tail)
        .digest(),
    );
  }
  return Buffer.concat(blocks).subarray(0, bytes);
}

/**
 * The synthetic message for a modulus of `k` octets: its length is the last of 128 PRF-drawn
 * 16-bit candidates, masked to the smallest all-ones value ≥ `k − 10`, that is below `k − 10`
 * (so 0 … k − 11 octets, the range a real message can have); its octets are the last `length`
 * octets of `IRPRF(KDK, "message", k)`. Selection is branch-free over the candidates.
 */
export function syntheticMessage(kdk: Uint8Array, k: number): Uint8Array {
  const maxSepOffset = k - 2 - 8;
  let mask = maxSepOffset;
  mask |= mask >> 1;
  mask |= mask >> 2;
  mask |= mask >> 4;
  mask |= mask >> 8;
  const candidates = irPrf(kdk, 'length', LENGTH_CANDIDATES * 2, LENGTH_CANDIDATES * 2 * 8);
  let length = 0;
  for (let i = 0; i < LENGTH_CANDIDATES * 2; i += 2) {
    const candidate = ((candidates[i]! << 8) | candidates[i + 1]!) & mask;
    // (candidate - maxSepOffset) >> 31 is -1 (all ones) exactly when candidate < maxSepOffset.
    const lt = (candidate - maxSepOffset) >> 31;
    length = (candidate & lt) | (length & ~lt);
  }
  const message = irPrf(kdk, 'message', k);
  return new Uint8Array(message.subarray(k - length));
}
