/**
 * A small ASN.1 BER/DER reader and DER writer (X.690).
 *
 * Why our own: certificate inspection must reach 10,000 certificates/s (design.md §5). The
 * schema libraries measured here (asn1js 4 via pkijs and @peculiar/x509) spend 0.5–1 ms per
 * certificate in decoding alone; a flat TLV walk over `Uint8Array` views costs microseconds.
 * `npm run bench` prints both figures. The reader is deliberately minimal and bounded:
 *
 * - It never copies: every node is a view (`start`/`end` offsets) into the caller's bytes.
 * - It accepts BER where real producers emit it (NSS writes indefinite lengths and
 *   constructed OCTET STRINGs in PKCS#12 and PKCS#7); callers that need DER (signatures,
 *   thumbprints) hash the original bytes, never a re-encoding.
 * - Lengths are checked against the input before use (truncation is reported as such), and
 *   nesting depth is capped ({@link MAX_DEPTH}) so hostile input cannot exhaust the stack.
 */
import { PkiError, malformed } from './errors.ts';

/** Nesting limit for constructed values; real PKI structures stay below 20. */
export const MAX_DEPTH = 64;

/** Universal tags (X.680 §8.4) used in this code base, as full identifier octets. */
export const Tag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  UTF8_STRING: 0x0c,
  SEQUENCE: 0x30,
  SET: 0x31,
  NUMERIC_STRING: 0x12,
  PRINTABLE_STRING: 0x13,
  T61_STRING: 0x14,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  VISIBLE_STRING: 0x1a,
  UNIVERSAL_STRING: 0x1c,
  BMP_STRING: 0x1e,
} as const;

/** One decoded TLV. Offsets index into `buf`, the caller's whole input. */
export interface Asn1 {
  readonly buf: Uint8Array;
  /** First identifier octet (class, constructed bit and tag number for tags < 31). */
  readonly tag: number;
  readonly constructed: boolean;
  /** Offset of the identifier octet. */
  readonly start: number;
  readonly valueStart: number;
  /** End of the contents (before the end-of-contents octets of an indefinite length). */
  readonly valueEnd: number;
  /** End of the whole TLV, end-of-contents octets included. */
  readonly end: number;
  readonly depth: number;
}

/** Tag number of a context-specific tag `[n]`, primitive or constructed. */
export function ctx(n: number, constructed: boolean): number {
  return 0x80 | (constructed ? 0x20 : 0) | n;
}

function truncated(what: string): PkiError {
  return new PkiError('ERR_PKI_TRUNCATED', what);
}

/**
 * Decodes the TLV that starts at `offset`, without decoding its children.
 * @param limit the offset the TLV must end at or before (the parent's end)
 */
export function readTlv(buf: Uint8Array, offset: number, limit: number, depth: number): Asn1 {
  if (depth > MAX_DEPTH)
    throw new PkiError('ERR_PKI_LIMIT', `ASN.1 nesting deeper than ${MAX_DEPTH}`);
  let p = offset;
  if (p >= limit) throw truncated('expected an ASN.1 value');
  const tag = buf[p++]!;
  if ((tag & 0x1f) === 0x1f) {
    // High-tag-number form: none of the structures we read uses it; skip it correctly anyway.
    let b: number;
    let n = 0;
    do {
      if (p >= limit) throw truncated('tag');
      b = buf[p++]!;
      if (++n > 4) throw malformed('tag number too large');
    } while (b & 0x80);
  }
  if (p >= limit) throw truncated('length');
  const constructed = (tag & 0x20) !== 0;
  let len = buf[p++]!;
  if (len === 0x80) {
    if (!constructed) throw malformed('indefinite length on a primitive value');
    // Indefinite length (BER): children until the end-of-contents octets 00 00.
    const valueStart = p;
    let q = p;
    for (;;) {
      if (q + 2 > limit) throw truncated('missing end-of-contents');
      if (buf[q] === 0 && buf[q + 1] === 0) break;
      q = readTlv(buf, q, limit, depth + 1).end;
    }
    return { buf, tag, constructed, start: offset, valueStart, valueEnd: q, end: q + 2, depth };
  }
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n > 4) throw new PkiError('ERR_PKI_LIMIT', 'length field longer than 4 octets');
    if (p + n > limit) throw truncated('length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p++]!;
  }
  if (p + len > limit) throw truncated(`value of ${len} bytes at offset ${offset}`);
  return {
    buf,
    tag,
    constructed,
    start: offset,
    valueStart: p,
    valueEnd: p + len,
    end: p + len,
    depth,
  };
}

/**
 * Decodes one complete value from `buf`.
 * @param allowTrailing accept bytes after the value (some files carry padding or text)
 */
export function decode(buf: Uint8Array, allowTrailing = false): Asn1 {
  if (buf.length === 0) throw new PkiError('ERR_PKI_EMPTY');
  const node = readTlv(buf, 0, buf.length, 0);
  if (!allowTrailing && node.end !== buf.length) {
    throw malformed(`${buf.length - node.end} unexpected bytes after the ASN.1 value`);
  }
  return node;
}

/**
 * The node, or `ERR_PKI_MALFORMED` when it is absent. Every reader below takes
 * `Asn1 | undefined` and starts here: callers index child lists freely (`parts[1]`), so a
 * SEQUENCE with fewer children than its type declares must be a malformed input, not a
 * TypeError (found by fuzzing: a certificate whose `[0]` version is empty).
 */
function present(node: Asn1 | undefined, what: string): Asn1 {
  if (!node) throw malformed(`expected ${what}, found none`);
  return node;
}

/** The children of a constructed value. */
export function children(node: Asn1 | undefined): Asn1[] {
  const n = present(node, 'a constructed value');
  if (!n.constructed) throw malformed(`expected a constructed value, got tag 0x${hex2(n.tag)}`);
  const out: Asn1[] = [];
  let p = n.valueStart;
  while (p < n.valueEnd) {
    const c = readTlv(n.buf, p, n.valueEnd, n.depth + 1);
    out.push(c);
    p = c.end;
  }
  return out;
}

/** The contents octets of a primitive value (a view, not a copy). */
export function value(node: Asn1 | undefined): Uint8Array {
  const n = present(node, 'a value');
  return n.buf.subarray(n.valueStart, n.valueEnd);
}

/** The whole TLV as it appeared in the input (a view). Hash this, never a re-encoding. */
export function raw(node: Asn1 | undefined): Uint8Array {
  const n = present(node, 'a value');
  return n.buf.subarray(n.start, n.end);
}

function hex2(b: number): string {
  return b.toString(16).padStart(2, '0');
}

/** Throws unless `n` has the identifier octet `tag`; `what` names the field in the message. */
export function expect(n: Asn1 | undefined, tag: number, what: string): Asn1 {
  if (!n) throw malformed(`${what}: missing`);
  if (n.tag !== tag) throw malformed(`${what}: expected tag 0x${hex2(tag)}, got 0x${hex2(n.tag)}`);
  return n;
}

/** Children of a SEQUENCE, checking the tag first. */
export function seq(n: Asn1 | undefined, what: string): Asn1[] {
  return children(expect(n, Tag.SEQUENCE, what));
}

/**
 * OCTET STRING contents, joining the segments of a constructed (BER) OCTET STRING.
 * Accepts any tag with the OCTET STRING shape (implicitly tagged fields pass their own tag).
 */
export function octets(node: Asn1 | undefined): Uint8Array {
  const n = present(node, 'an OCTET STRING');
  if (!n.constructed) return value(n);
  const parts = children(n).map(octets);
  return concat(parts);
}

/** OBJECT IDENTIFIER in dotted form (X.690 §8.19). */
export function oid(node: Asn1 | undefined): string {
  const n = present(node, 'an OBJECT IDENTIFIER');
  if (n.tag !== Tag.OID) throw malformed(`expected an OBJECT IDENTIFIER, got tag 0x${hex2(n.tag)}`);
  return oidFromBytes(value(n));
}

const oidCache = new Map<string, string>();

/** Decodes OID contents octets; results are memoised since a handful of OIDs recur constantly. */
export function oidFromBytes(v: Uint8Array): string {
  if (v.length === 0) throw malformed('empty OBJECT IDENTIFIER');
  if (v.length <= 16) {
    let key = '';
    for (let i = 0; i < v.length; i++) key += String.fromCharCode(v[i]!);
    const hit = oidCache.get(key);
    if (hit !== undefined) return hit;
    const s = decodeOid(v);
    if (oidCache.size < 4096) oidCache.set(key, s);
    return s;
  }
  return decodeOid(v);
}

/**
 * Longest arc accepted, in octets: 20 octets hold 140 bits, above the 128-bit UUID arcs of
 * `2.25` (X.667), the longest any real OID uses. Without a cap one huge arc made decoding
 * quadratic (found by fuzzing: a 60 KB arc took a third of a second, 256 KB several seconds).
 */
const MAX_OID_ARC_OCTETS = 20;

function decodeOid(v: Uint8Array): string {
  const arcs: string[] = [];
  let acc = 0n;
  let small = 0;
  let big = false;
  let arcOctets = 0;
  for (let i = 0; i < v.length; i++) {
    const b = v[i]!;
    if (++arcOctets > MAX_OID_ARC_OCTETS)
      throw new PkiError(
        'ERR_PKI_LIMIT',
        `OBJECT IDENTIFIER arc longer than ${MAX_OID_ARC_OCTETS} octets`,
      );
    if (!big && small > 0x1ffffff) {
      big = true;
      acc = BigInt(small);
    }
    if (big) acc = (acc << 7n) | BigInt(b & 0x7f);
    else small = small * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      const arc = big ? acc : BigInt(small);
      if (arcs.length === 0) {
        const first = arc < 40n ? 0n : arc < 80n ? 1n : 2n;
        arcs.push(first.toString(), (arc - first * 40n).toString());
      } else arcs.push(arc.toString());
      acc = 0n;
      small = 0;
      big = false;
      arcOctets = 0;
    } else if (i === v.length - 1) throw malformed('OBJECT IDENTIFIER ends inside an arc');
  }
  return arcs.join('.');
}

/** INTEGER as a bigint (two's complement). */
export function integer(node: Asn1 | undefined): bigint {
  const n = present(node, 'an INTEGER');
  if (n.tag !== Tag.INTEGER) throw malformed(`expected an INTEGER, got tag 0x${hex2(n.tag)}`);
  const v = value(n);
  if (v.length === 0) throw malformed('empty INTEGER');
  // Through hex, which is linear: shifting a bigint octet by octet copies it each time, so a
  // 60 KB INTEGER took half a second (found by fuzzing, an iteration count in a PKCS#12 bag).
  const x = BigInt(`0x${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')}`);
  return v[0]! & 0x80 ? x - (1n << BigInt(v.length * 8)) : x;
}

/** A small non-negative INTEGER as a number (versions, iteration counts). */
export function smallInt(n: Asn1 | undefined, max = Number.MAX_SAFE_INTEGER): number {
  // More than 8 contents octets is beyond 2^63 in any valid encoding (X.690 §8.3.2).
  if (n && n.tag === Tag.INTEGER && n.valueEnd - n.valueStart > 8)
    throw new PkiError('ERR_PKI_LIMIT', `an INTEGER of ${n.valueEnd - n.valueStart} octets`);
  const x = integer(n);
  if (x < 0n || x > BigInt(max)) throw new PkiError('ERR_PKI_LIMIT', `integer ${x} out of range`);
  return Number(x);
}

/** BOOLEAN (BER: any non-zero octet is TRUE). */
export function boolean(node: Asn1 | undefined): boolean {
  const n = present(node, 'a BOOLEAN');
  const v = value(n);
  if (n.tag !== Tag.BOOLEAN || v.length !== 1) throw malformed('bad BOOLEAN');
  return v[0] !== 0;
}

/** BIT STRING contents: the unused-bit count and the data octets (a view). */
export function bitString(n: Asn1 | undefined): { unused: number; bytes: Uint8Array } {
  const v = octets(n);
  if (v.length === 0 || v[0]! > 7) throw malformed('bad BIT STRING');
  return { unused: v[0]!, bytes: v.subarray(1) };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const latin1 = new TextDecoder('latin1');

/** Any ASN.1 character string, converted to a JS string. */
export function string(node: Asn1 | undefined): string {
  const n = present(node, 'a character string');
  const v = octets(n);
  switch (n.tag) {
    case Tag.UTF8_STRING:
      try {
        return utf8.decode(v);
      } catch {
        throw malformed('invalid UTF-8 in UTF8String');
      }
    case Tag.BMP_STRING:
      return bmp(v);
    case Tag.UNIVERSAL_STRING: {
      if (v.length % 4) throw malformed('odd UniversalString length');
      let s = '';
      for (let i = 0; i < v.length; i += 4) {
        const c = ((v[i]! << 24) | (v[i + 1]! << 16) | (v[i + 2]! << 8) | v[i + 3]!) >>> 0;
        // UCS-4 beyond Unicode's range has no JS string (found by fuzzing: a RangeError).
        if (c > 0x10ffff) throw malformed(`UniversalString character U+${c.toString(16)}`);
        s += String.fromCodePoint(c);
      }
      return s;
    }
    case Tag.PRINTABLE_STRING:
    case Tag.IA5_STRING:
    case Tag.NUMERIC_STRING:
    case Tag.VISIBLE_STRING:
    case Tag.T61_STRING:
    case Tag.UTC_TIME:
    case Tag.GENERALIZED_TIME:
      return latin1.decode(v);
    default:
      if ((n.tag & 0xc0) === 0x80) return latin1.decode(v); // implicitly tagged IA5String
      throw malformed(`expected a character string, got tag 0x${hex2(n.tag)}`);
  }
}

/** Big-endian UTF-16 (BMPString, PKCS#12 passwords and friendlyName). */
export function bmp(v: Uint8Array): string {
  if (v.length % 2) throw malformed('odd BMPString length');
  let s = '';
  for (let i = 0; i < v.length; i += 2) s += String.fromCharCode((v[i]! << 8) | v[i + 1]!);
  return s;
}

/** UTCTime or GeneralizedTime (RFC 5280 §4.1.2.5 forms, seconds optional in BER). */
export function time(node: Asn1 | undefined): Date {
  const n = present(node, 'a time');
  const s = latin1.decode(value(n));
  let m: RegExpExecArray | null;
  let year: number;
  if (n.tag === Tag.UTC_TIME) {
    m = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)?(Z|[+-]\d{4})$/.exec(s);
    if (!m) throw malformed(`bad UTCTime "${s}"`);
    const yy = Number(m[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy; // RFC 5280 §4.1.2.5.1
  } else if (n.tag === Tag.GENERALIZED_TIME) {
    m = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)?(?:\.\d+)?(Z|[+-]\d{4})?$/.exec(s);
    if (!m) throw malformed(`bad GeneralizedTime "${s}"`);
    year = Number(m[1]);
  } else throw malformed(`expected a time, got tag 0x${hex2(n.tag)}`);
  let t = Date.UTC(
    year,
    Number(m[2]) - 1,
    Number(m[3]),
    Number(m[4]),
    Number(m[5]),
    Number(m[6] ?? 0),
  );
  const zone = m[7];
  if (zone && zone !== 'Z') {
    const sign = zone[0] === '-' ? -1 : 1;
    t -= sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(3, 5))) * 60_000;
  }
  return new Date(t);
}

/** Concatenates byte arrays. */
export function concat(parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = new Uint8Array(len);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// DER writer. Values are built bottom-up as byte arrays; lengths are always definite and
// minimal (X.690 §10.1), and SET OF contents are sorted (X.690 §11.6).

/** Encodes a TLV with the given identifier octet around `content`, in one allocation. */
export function tlv(tag: number, ...content: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  let len = 0;
  for (const c of content) len += c.length;
  let lenBytes = 0;
  if (len >= 0x80) for (let x = len; x > 0; x = Math.floor(x / 256)) lenBytes++;
  const head = 2 + lenBytes;
  const out = new Uint8Array(head + len);
  out[0] = tag;
  if (lenBytes === 0) out[1] = len;
  else {
    out[1] = 0x80 | lenBytes;
    for (let i = head - 1, x = len; i >= 2; i--, x = Math.floor(x / 256)) out[i] = x & 0xff;
  }
  let o = head;
  for (const c of content) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/** Encoded OBJECT IDENTIFIER TLVs by dotted form: a handful of OIDs are written constantly. */
const oidTlvCache = new Map<string, Uint8Array<ArrayBuffer>>();

/** OBJECT IDENTIFIER TLV; a fresh copy each time, so callers may keep or change it. */
function oidTlv(dotted: string): Uint8Array<ArrayBuffer> {
  let hit = oidTlvCache.get(dotted);
  if (!hit) {
    hit = tlv(Tag.OID, oidBytes(dotted));
    if (oidTlvCache.size < 4096) oidTlvCache.set(dotted, hit);
  }
  return hit.slice();
}

export const enc = {
  seq: (...items: readonly Uint8Array[]) => tlv(Tag.SEQUENCE, ...items),
  /** SET OF: DER requires the encodings in ascending order. */
  setOf: (...items: readonly Uint8Array[]) => tlv(Tag.SET, ...items.toSorted(compareBytes)),
  octets: (v: Uint8Array) => tlv(Tag.OCTET_STRING, v),
  null: () => Uint8Array.from([Tag.NULL, 0]),
  bool: (b: boolean) => Uint8Array.from([Tag.BOOLEAN, 1, b ? 0xff : 0]),
  utf8: (s: string) => tlv(Tag.UTF8_STRING, new TextEncoder().encode(s)),
  printable: (s: string) => tlv(Tag.PRINTABLE_STRING, Buffer.from(s, 'latin1')),
  ia5: (s: string) => tlv(Tag.IA5_STRING, Buffer.from(s, 'latin1')),
  bmp: (s: string) => tlv(Tag.BMP_STRING, bmpBytes(s)),
  /** BIT STRING with no unused bits. */
  bits: (v: Uint8Array) => tlv(Tag.BIT_STRING, Uint8Array.of(0), v),
  /** `[n]` EXPLICIT or constructed IMPLICIT. */
  ctx: (n: number, ...content: readonly Uint8Array[]) => tlv(ctx(n, true), ...content),
  /** `[n]` IMPLICIT on a primitive type. */
  ctxPrim: (n: number, v: Uint8Array) => tlv(ctx(n, false), v),
  int: (x: bigint | number) =>
    typeof x === 'number' && Number.isInteger(x) && x >= 0 && x < 0x80
      ? Uint8Array.of(Tag.INTEGER, 1, x)
      : tlv(Tag.INTEGER, intBytes(BigInt(x))),
  /** INTEGER from unsigned big-endian magnitude bytes (serial numbers). */
  uint: (mag: Uint8Array) => {
    let i = 0;
    while (i < mag.length - 1 && mag[i] === 0) i++;
    const m = mag.subarray(i);
    return tlv(Tag.INTEGER, m.length && m[0]! & 0x80 ? concat([Uint8Array.of(0), m]) : m);
  },
  oid: (dotted: string) => oidTlv(dotted),
  utcTime: (d: Date) => tlv(Tag.UTC_TIME, Buffer.from(fmtTime(d).slice(2), 'latin1')),
  generalizedTime: (d: Date) => tlv(Tag.GENERALIZED_TIME, Buffer.from(fmtTime(d), 'latin1')),
  /** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. */
  time: (d: Date) => (d.getUTCFullYear() < 2050 ? enc.utcTime(d) : enc.generalizedTime(d)),
} as const;

const pad2 = (n: number) => (n < 10 ? `0${n}` : `${n}`);

/** YYYYMMDDHHMMSSZ (X.690 §11.7/§11.8 without fractions; UTCTime drops the century). */
function fmtTime(d: Date): string {
  const y = d.getUTCFullYear();
  if (!(y >= 1000 && y <= 9999))
    return d
      .toISOString()
      .replace(/[-:T]/g, '')
      .replace(/\.\d+Z$/, 'Z');
  return `${y}${pad2(d.getUTCMonth() + 1)}${pad2(d.getUTCDate())}${pad2(d.getUTCHours())}${pad2(d.getUTCMinutes())}${pad2(d.getUTCSeconds())}Z`;
}

/** UTF-16BE without terminator. */
export function bmpBytes(s: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(s.length * 2);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out[2 * i] = c >> 8;
    out[2 * i + 1] = c & 0xff;
  }
  return out;
}

function intBytes(x: bigint): Uint8Array {
  const bytes: number[] = [];
  for (;;) {
    bytes.unshift(Number(x & 0xffn));
    const rest = x >> 8n;
    const sign = bytes[0]! & 0x80;
    if ((rest === 0n && !sign) || (rest === -1n && sign)) break;
    x = rest;
  }
  return Uint8Array.from(bytes);
}

/** OID contents octets from dotted form. */
export function oidBytes(dotted: string): Uint8Array {
  const arcs = dotted.split('.').map((a) => {
    if (!/^\d+$/.test(a)) throw new PkiError('ERR_PKI_INVALID_ARGUMENT', `bad OID "${dotted}"`);
    return BigInt(a);
  });
  if (arcs.length < 2) throw new PkiError('ERR_PKI_INVALID_ARGUMENT', `bad OID "${dotted}"`);
  const out: number[] = [];
  const push = (v: bigint) => {
    const group: number[] = [Number(v & 0x7fn)];
    for (v >>= 7n; v > 0n; v >>= 7n) group.unshift(Number(v & 0x7fn) | 0x80);
    out.push(...group);
  };
  push(arcs[0]! * 40n + arcs[1]!);
  for (const a of arcs.slice(2)) push(a);
  return Uint8Array.from(out);
}

/** Lexicographic byte order, shorter first on a common prefix (X.690 §11.6). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** Byte equality (not constant time; see `lib/secrets` for secrets). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && compareBytes(a, b) === 0;
}
