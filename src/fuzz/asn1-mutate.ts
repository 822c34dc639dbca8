/**
 * Structure-aware mutation of BER/DER (X.690): the input is read as a tree of TLVs, one node is
 * changed, and the tree is written back with every enclosing length recomputed. A byte-level
 * mutation of a certificate almost always breaks an outer length and stops at the first
 * `readTlv`; this one reaches the extension, the PKCS#12 bag or the SCEP attribute it changed.
 *
 * The reader here is deliberately separate from `pki/der.ts` (the code under test) and more
 * lenient: anything that does not parse as TLVs is kept as opaque bytes. OCTET STRING and
 * BIT STRING contents that themselves parse as DER (extnValue, PKCS#12 authSafe, signed
 * attributes) are opened too, so mutations reach inside them.
 */
import { concat } from '../pki/der.ts';
import type { Rng } from './rng.ts';

/** One TLV. `children` when the contents parsed as TLVs; otherwise `value`. */
interface Node {
  tag: Uint8Array;
  children?: Node[];
  value?: Uint8Array;
  /** BIT STRING: the unused-bits octet in front of encapsulated children. */
  prefix?: Uint8Array;
  /** Written with an indefinite length (BER) when true. */
  indefinite?: boolean;
}

const MAX_DEPTH = 40;
const MAX_NODES = 4000;

/** Tags worth switching to: the universal types PKI uses and a few context tags. */
const TAGS = [
  0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0a, 0x0c, 0x13, 0x14, 0x16, 0x17, 0x18, 0x1a, 0x1c, 0x1e,
  0x30, 0x31, 0x80, 0x81, 0x82, 0x86, 0x87, 0xa0, 0xa1, 0xa2, 0xa3, 0x24, 0x23,
];

/** INTEGER values that sit on boundaries: sizes, signs, iteration-count and version limits. */
const INTEGERS: readonly bigint[] = [
  0n,
  1n,
  2n,
  3n,
  -1n,
  127n,
  128n,
  255n,
  256n,
  2048n,
  65535n,
  65536n,
  1_000_000n,
  10_000_000n,
  10_000_001n,
  1_000_000_000n,
  0x7fffffffn,
  0x80000000n,
  0xffffffffn,
  2n ** 53n,
  2n ** 64n,
  -(2n ** 63n),
  2n ** 800n,
];

interface Parsed {
  count: number;
}

function readLength(buf: Uint8Array, p: number, end: number): [len: number, next: number] | null {
  if (p >= end) return null;
  const first = buf[p++]!;
  if (first < 0x80) return [first, p];
  if (first === 0x80) return [-1, p];
  const n = first & 0x7f;
  if (n > 4 || p + n > end) return null;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + buf[p++]!;
  return [len, p];
}

/** Reads TLVs from buf[start, end); null unless they cover the range exactly. */
function readList(
  buf: Uint8Array,
  start: number,
  end: number,
  depth: number,
  st: Parsed,
): Node[] | null {
  const out: Node[] = [];
  let p = start;
  while (p < end) {
    if (depth > MAX_DEPTH || ++st.count > MAX_NODES) return null;
    const tagStart = p;
    if ((buf[p++]! & 0x1f) === 0x1f) {
      while (p < end && buf[p]! & 0x80) p++;
      p++;
    }
    if (p > end) return null;
    const tag = buf.slice(tagStart, p);
    const constructed = (tag[0]! & 0x20) !== 0;
    const l = readLength(buf, p, end);
    if (!l) return null;
    const [len, valueStart] = l;
    if (len < 0) {
      if (!constructed) return null;
      const one = readIndefinite(buf, tag, valueStart, end, depth, st);
      if (!one) return null;
      out.push(one[0]);
      p = one[1];
      continue;
    }
    const valueEnd = valueStart + len;
    if (valueEnd > end) return null;
    out.push(nodeOf(buf, tag, constructed, valueStart, valueEnd, depth, st));
    p = valueEnd;
  }
  return out;
}

function readOne(
  buf: Uint8Array,
  p: number,
  end: number,
  depth: number,
  st: Parsed,
): [Node, number] | null {
  // Find this TLV's end by reading it alone.
  let q = p;
  if ((buf[q++]! & 0x1f) === 0x1f) {
    while (q < end && buf[q]! & 0x80) q++;
    q++;
  }
  const l = readLength(buf, q, end);
  if (!l) return null;
  if (l[0] >= 0) {
    const stop = l[1] + l[0];
    if (stop > end) return null;
    const list = readList(buf, p, stop, depth, st);
    return list && list.length === 1 ? [list[0]!, stop] : null;
  }
  return readIndefinite(buf, buf.slice(p, q), l[1], end, depth, st);
}

/** The children of an indefinite-length value, up to its end-of-contents octets. */
function readIndefinite(
  buf: Uint8Array,
  tag: Uint8Array,
  start: number,
  end: number,
  depth: number,
  st: Parsed,
): [Node, number] | null {
  const kids: Node[] = [];
  let r = start;
  for (;;) {
    if (r + 2 > end) return null;
    if (buf[r] === 0 && buf[r + 1] === 0) break;
    const one = readOne(buf, r, end, depth + 1, st);
    if (!one) return null;
    kids.push(one[0]);
    r = one[1];
  }
  return [{ tag, children: kids, indefinite: true }, r + 2];
}

function nodeOf(
  buf: Uint8Array,
  tag: Uint8Array,
  constructed: boolean,
  start: number,
  end: number,
  depth: number,
  st: Parsed,
): Node {
  const t = tag[0]!;
  if (constructed) {
    const kids = readList(buf, start, end, depth + 1, st);
    if (kids) return { tag, children: kids };
  } else if ((t === 0x04 || t === 0x80) && end - start >= 2 && buf[start] === 0x30) {
    // OCTET STRING (or an implicit [0] of one) wrapping DER.
    const kids = readList(buf, start, end, depth + 1, st);
    if (kids && kids.length === 1) return { tag, children: kids };
  } else if (t === 0x03 && end - start >= 3 && buf[start] === 0 && buf[start + 1] === 0x30) {
    const kids = readList(buf, start + 1, end, depth + 1, st);
    if (kids && kids.length === 1) return { tag, children: kids, prefix: Uint8Array.of(0) };
  }
  return { tag, value: buf.slice(start, end) };
}

function encodeLength(len: number, rng: Rng | undefined): number[] {
  // Occasionally a non-minimal long form, which BER allows and DER forbids.
  if (rng?.oneIn(200))
    return [0x84, len >>> 24, (len >>> 16) & 0xff, (len >>> 8) & 0xff, len & 0xff];
  if (len < 0x80) return [len];
  const out: number[] = [];
  for (let x = len; x > 0; x = Math.floor(x / 256)) out.unshift(x & 0xff);
  return [0x80 | out.length, ...out];
}

function write(n: Node, parts: Uint8Array[], rng: Rng | undefined): number {
  parts.push(n.tag);
  if (n.children) {
    const constructed = (n.tag[0]! & 0x20) !== 0;
    if (n.indefinite && constructed) {
      parts.push(Uint8Array.of(0x80));
      let len = 3;
      for (const c of n.children) len += write(c, parts, rng);
      parts.push(Uint8Array.of(0, 0));
      return n.tag.length + len;
    }
    const inner: Uint8Array[] = [];
    let len = n.prefix?.length ?? 0;
    if (n.prefix) inner.push(n.prefix);
    for (const c of n.children) len += write(c, inner, rng);
    const head = Uint8Array.from(encodeLength(len, rng));
    parts.push(head, ...inner);
    return n.tag.length + head.length + len;
  }
  const value = n.value ?? new Uint8Array(0);
  const head = Uint8Array.from(encodeLength(value.length, rng));
  parts.push(head, value);
  return n.tag.length + head.length + value.length;
}

function serialize(nodes: readonly Node[], rng?: Rng): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const n of nodes) write(n, parts, rng);
  return concat(parts);
}

/** The input as a TLV forest, or null when it is not (or too big to be worth it). */
function parse(input: Uint8Array): Node[] | null {
  if (input.length < 2 || input.length > 1 << 20) return null;
  return readList(input, 0, input.length, 0, { count: 0 });
}

/** Every node with its parent's child list, pre-order. */
function flatten(nodes: Node[]): { node: Node; siblings: Node[] }[] {
  const out: { node: Node; siblings: Node[] }[] = [];
  const walk = (list: Node[]) => {
    for (const n of list) {
      out.push({ node: n, siblings: list });
      if (n.children) walk(n.children);
    }
  };
  walk(nodes);
  return out;
}

function integerBytes(x: bigint): Uint8Array {
  const out: number[] = [];
  let v = x;
  for (;;) {
    out.unshift(Number(BigInt.asUintN(8, v)));
    v >>= 8n;
    if ((v === 0n && !(out[0]! & 0x80)) || (v === -1n && out[0]! & 0x80)) break;
  }
  return Uint8Array.from(out);
}

function clone(n: Node): Node {
  return {
    tag: n.tag,
    ...(n.children ? { children: n.children.map(clone) } : {}),
    ...(n.value ? { value: n.value } : {}),
    ...(n.prefix ? { prefix: n.prefix } : {}),
    ...(n.indefinite ? { indefinite: true } : {}),
  };
}

/**
 * One structural mutation of `input`, or null when it does not parse as TLVs. `bytes` mutates a
 * primitive value with the generic byte-level mutators; `oids` are encoded OBJECT IDENTIFIER
 * contents to swap in; `other` is another corpus entry to take a subtree from.
 */
export function mutateAsn1(
  input: Uint8Array,
  rng: Rng,
  bytes: (value: Uint8Array) => Uint8Array,
  oids: readonly Uint8Array[],
  other: Uint8Array | undefined,
): Uint8Array | null {
  const tree = parse(input);
  if (!tree || tree.length === 0) return null;
  const all = flatten(tree);
  const { node, siblings } = rng.pick(all);
  const at = siblings.indexOf(node);
  switch (rng.below(10)) {
    case 0:
    case 1: {
      // Change a primitive value (or, for a constructed node, one of its children's bytes).
      const values = node.value ? [node] : all.filter((e) => e.node.value).map((e) => e.node);
      if (!values.length) return null;
      const target = rng.pick(values);
      if (!target.value) return null;
      if (target.tag[0] === 0x02 && rng.oneIn(2)) target.value = integerBytes(rng.pick(INTEGERS));
      else if (target.tag[0] === 0x06 && oids.length && rng.oneIn(2)) target.value = rng.pick(oids);
      else target.value = bytes(target.value);
      break;
    }
    case 2: {
      const ints = all.filter((e) => e.node.tag[0] === 0x02 && e.node.value);
      if (!ints.length) return null;
      rng.pick(ints).node.value = integerBytes(rng.pick(INTEGERS));
      break;
    }
    case 3:
      node.tag = Uint8Array.of(rng.pick(TAGS));
      if (node.children && !(node.tag[0]! & 0x20) && node.tag[0] !== 0x04 && node.tag[0] !== 0x03) {
        node.value = serialize(node.children);
        delete node.children;
        delete node.prefix;
      }
      break;
    case 4:
      siblings.splice(at, 1);
      break;
    case 5: {
      // Duplicate: once usually, sometimes many times (bundles, bags, attributes, depth of SETs).
      const times = rng.oneIn(8) ? 2 + rng.below(200) : 1;
      for (let i = 0; i < times; i++) siblings.splice(at, 0, clone(node));
      break;
    }
    case 6: {
      // Wrap in SEQUENCEs (or SETs, or [0]), sometimes deeply: nesting limits.
      const depth = rng.oneIn(6) ? 2 + rng.below(120) : 1;
      const tag = Uint8Array.of(rng.pick([0x30, 0x31, 0xa0, 0x24]));
      let n: Node = node;
      for (let i = 0; i < depth; i++) n = { tag, children: [n] };
      siblings[at] = n;
      break;
    }
    case 7: {
      // Graft a subtree of another input (or of this one) here.
      const donor = (other && parse(other)) || tree;
      siblings[at] = clone(rng.pick(flatten(donor)).node);
      break;
    }
    case 8:
      if (node.children) node.indefinite = !node.indefinite;
      else
        siblings.splice(at + rng.below(2), 0, {
          tag: Uint8Array.of(rng.pick(TAGS)),
          value: bytes(new Uint8Array(0)),
        });
      break;
    default: {
      // Swap two siblings (order matters to SEQUENCE readers).
      if (siblings.length < 2) return null;
      const j = rng.below(siblings.length);
      [siblings[at], siblings[j]] = [siblings[j]!, siblings[at]!];
    }
  }
  return serialize(tree, rng);
}

/**
 * Smaller variants of `input` for minimizing a finding: each node removed, and each constructed
 * node replaced by one of its children, in pre-order (outer nodes first). Nothing when the input
 * is not TLVs.
 */
export function* asn1Reductions(input: Uint8Array): Generator<Uint8Array> {
  const count = parse(input) ? flatten(parse(input)!).length : 0;
  for (let i = 0; i < count; i++) {
    for (const hoist of [false, true]) {
      const tree = parse(input)!;
      const { node, siblings } = flatten(tree)[i]!;
      const at = siblings.indexOf(node);
      if (!hoist) siblings.splice(at, 1);
      else if (node.children?.length) siblings.splice(at, 1, ...node.children);
      else continue;
      yield serialize(tree);
    }
  }
}

/**
 * Grows one TLV until the input is about `room` octets longer: a primitive value repeated
 * (a huge INTEGER, OID arc or string), or a node repeated among its siblings (thousands of
 * certificates, bags, attributes). For inputs that are TLVs; null otherwise.
 */
export function amplifyAsn1(input: Uint8Array, rng: Rng, room: number): Uint8Array | null {
  const tree = parse(input);
  if (!tree || tree.length === 0 || room <= 0) return null;
  const { node, siblings } = rng.pick(flatten(tree));
  if (node.value && rng.oneIn(2)) {
    const unit =
      node.value.length && rng.oneIn(2)
        ? node.value.subarray(0, 1 + rng.below(4))
        : Uint8Array.of(rng.pick([0x81, 0xff, 0x00, 0x7f, 0x41]));
    const grown = new Uint8Array(node.value.length + room - (room % unit.length));
    grown.set(node.value);
    for (let o = node.value.length; o + unit.length <= grown.length; o += unit.length)
      grown.set(unit, o);
    node.value = grown;
  } else {
    const size = serialize([node]).length;
    const copies = Math.min(100_000, Math.floor(room / Math.max(size, 1)));
    siblings.splice(siblings.indexOf(node), 0, ...Array.from({ length: copies }, () => node));
  }
  return serialize(tree);
}
