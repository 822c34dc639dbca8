/**
 * Mutations, after libFuzzer's set (bit and byte changes, inserts, deletes, copies, splices of
 * two corpus entries, dictionary tokens), plus three that know our inputs:
 *
 * - ASN.1: one TLV of the tree changed with lengths recomputed (asn1-mutate.ts);
 * - base64: the longest base64 run (a PEM body, a SCEP GET message, a BinarySecurityToken, a
 *   certificate in SyncML) is decoded, mutated as bytes (ASN.1 included) and encoded again;
 * - amplify: a short slice repeated up to the target's size limit, rarely, so that work that
 *   grows faster than the input (a quadratic scan, one allocation per element) shows as a hang.
 */
import { concat } from '../pki/der.ts';
import { amplifyAsn1, mutateAsn1 } from './asn1-mutate.ts';
import type { Rng } from './rng.ts';

export interface MutationContext {
  readonly rng: Rng;
  /** Tokens worth inserting whole (XML tags and entities, PEM lines, numbers). */
  readonly dictionary: readonly Uint8Array[];
  /** OBJECT IDENTIFIER contents (without tag and length) to swap into OID values. */
  readonly oids: readonly Uint8Array[];
  /** Ordinary mutations keep inputs at most this long. */
  readonly maxLen: number;
  /** Amplification may grow an input up to this long (about the parser's own size limit). */
  readonly bigLen: number;
  /** Another corpus entry, for splicing. */
  readonly other: () => Uint8Array;
}

const INTERESTING_8 = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x20, 0x30, 0x3c, 0x3e, 0x2f, 0x26, 0x22];
const INTERESTING_32 = [0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff];
const NUMBERS = [
  '0',
  '-1',
  '1',
  '65536',
  '2147483648',
  '4294967296',
  '99999999999999999999',
  '1e308',
  'NaN',
  '',
];

const latin1 = (b: Uint8Array) =>
  Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
const fromLatin1 = (s: string) => new Uint8Array(Buffer.from(s, 'latin1'));

/** A byte-level mutation; never returns an input longer than `maxLen` (truncates instead). */
function mutateBytes(input: Uint8Array, c: MutationContext): Uint8Array {
  const { rng } = c;
  const len = input.length;
  const out = (b: Uint8Array) => (b.length > c.maxLen ? b.subarray(0, c.maxLen) : b);
  if (len === 0)
    return out(
      rng.oneIn(2) && c.dictionary.length ? rng.pick(c.dictionary) : Uint8Array.of(rng.below(256)),
    );
  const pos = rng.below(len);
  switch (rng.below(12)) {
    case 0: {
      const b = input.slice();
      b[pos]! ^= 1 << rng.below(8);
      return b;
    }
    case 1: {
      const b = input.slice();
      b[pos] = rng.below(256);
      return b;
    }
    case 2: {
      const b = input.slice();
      b[pos] = rng.pick(INTERESTING_8);
      return b;
    }
    case 3: {
      const b = input.slice();
      const v = rng.pick(INTERESTING_32);
      const size = rng.pick([2, 4]);
      for (let i = 0; i < size && pos + i < len; i++)
        b[pos + i] = (v >>> (8 * (size - 1 - i))) & 0xff;
      return b;
    }
    case 4: {
      const n = rng.smallLength(16);
      const ins = new Uint8Array(n);
      const fill = rng.oneIn(2) ? rng.below(256) : -1;
      for (let i = 0; i < n; i++) ins[i] = fill >= 0 ? fill : rng.below(256);
      return out(concat([input.subarray(0, pos), ins, input.subarray(pos)]));
    }
    case 5: {
      const n = Math.min(rng.smallLength(len), len - pos);
      return concat([input.subarray(0, pos), input.subarray(pos + n)]);
    }
    case 6: {
      // Copy a slice to another place (insert).
      const n = Math.min(rng.smallLength(len), len - pos);
      const to = rng.below(len + 1);
      return out(concat([input.subarray(0, to), input.slice(pos, pos + n), input.subarray(to)]));
    }
    case 7: {
      // Copy a slice over another place.
      const n = Math.min(rng.smallLength(len), len - pos);
      const b = input.slice();
      const to = rng.below(len);
      b.set(input.subarray(pos, pos + Math.min(n, len - to)), to);
      return b;
    }
    case 8: {
      // Splice: a prefix of this input and a suffix of another.
      const other = c.other();
      return out(concat([input.subarray(0, pos), other.subarray(rng.below(other.length + 1))]));
    }
    case 9: {
      if (!c.dictionary.length) return input.subarray(0, pos);
      const token = rng.pick(c.dictionary);
      if (rng.oneIn(2)) return out(concat([input.subarray(0, pos), token, input.subarray(pos)]));
      return out(
        concat([input.subarray(0, pos), token, input.subarray(Math.min(len, pos + token.length))]),
      );
    }
    case 10: {
      // A run of decimal digits replaced by a boundary number (iteration counts, sizes, CmdIDs).
      const text = latin1(input);
      const runs = [...text.matchAll(/\d+/g)];
      if (!runs.length) return input.subarray(0, pos);
      const m = rng.pick(runs);
      return out(
        fromLatin1(text.slice(0, m.index) + rng.pick(NUMBERS) + text.slice(m.index + m[0].length)),
      );
    }
    default:
      return input.subarray(0, pos); // truncate
  }
}

/** Decodes the longest base64 run (≥ 32 characters, line breaks allowed), mutates it, re-encodes. */
function mutateBase64(input: Uint8Array, c: MutationContext, depth: number): Uint8Array | null {
  const text = latin1(input);
  let best: RegExpExecArray | null = null;
  const re = /(?:[A-Za-z0-9+/]{4}(?:\r?\n)?){8,}(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?/g;
  for (let m = re.exec(text); m; m = re.exec(text))
    if (!best || m[0].length > best[0].length) best = m;
  if (!best) return null;
  const inner = new Uint8Array(Buffer.from(best[0].replace(/\s+/g, ''), 'base64'));
  const mutated = mutateOnce(inner, c, depth + 1);
  const b64 = Buffer.from(mutated.buffer, mutated.byteOffset, mutated.byteLength).toString(
    'base64',
  );
  const wrapped = best[0].includes('\n') ? b64.replace(/(.{64})/g, '$1\n') : b64;
  return fromLatin1(text.slice(0, best.index) + wrapped + text.slice(best.index + best[0].length));
}

/** Repeats a slice of the input, or a dictionary token, until the input is `bigLen` long. */
function amplify(input: Uint8Array, c: MutationContext): Uint8Array {
  const { rng } = c;
  if (input.length === 0) return input;
  const pos = rng.below(input.length);
  const slice =
    c.dictionary.length && rng.oneIn(2)
      ? rng.pick(c.dictionary)
      : input.slice(pos, pos + 1 + rng.below(16));
  const room = Math.max(0, c.bigLen - input.length);
  const times = Math.floor(room / slice.length);
  const reps = new Uint8Array(slice.length * times);
  for (let i = 0; i < times; i++) reps.set(slice, i * slice.length);
  return concat([input.subarray(0, pos), reps, input.subarray(pos)]);
}

function mutateOnce(input: Uint8Array, c: MutationContext, depth = 0): Uint8Array {
  const { rng } = c;
  const r = rng.below(100);
  if (r < 30) {
    const other = rng.oneIn(4) ? c.other() : undefined;
    const m = mutateAsn1(input, rng, (v) => mutateBytes(v, c), c.oids, other);
    if (m) return m.length > c.maxLen ? m.subarray(0, c.maxLen) : m;
  } else if (r < 45 && depth === 0) {
    const m = mutateBase64(input, c, depth);
    if (m) return m.length > c.maxLen ? m.subarray(0, c.maxLen) : m;
  }
  return mutateBytes(input, c);
}

/**
 * A new input from `input`: one to five stacked mutations, or (about one time in 500) an
 * amplification up to `bigLen`.
 */
export function mutate(input: Uint8Array, c: MutationContext): Uint8Array {
  if (c.rng.oneIn(500)) {
    if (c.rng.oneIn(2)) {
      const grown = amplifyAsn1(input, c.rng, c.bigLen - input.length - 16);
      if (grown) return grown;
    }
    return amplify(input, c);
  }
  let out = input;
  const n = 1 + (c.rng.oneIn(2) ? 0 : c.rng.below(5));
  for (let i = 0; i < n; i++) out = mutateOnce(out, c);
  return out;
}
