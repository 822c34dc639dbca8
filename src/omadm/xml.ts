/**
 * The XML underneath omadm's protocols (SyncML DM, the MS-MDE2 SOAP messages, the
 * wap-provisioningdoc): one guard for hostile input, a namespace-aware reader, and a writer.
 * XML is read by our own reader (xml-read.ts, which says why); this file adds what the protocols
 * need on top of it, and writes XML itself (a direct serialiser: fast-xml-builder cost more than
 * the text it wrote).
 *
 * Input from the network is hostile. {@link guardXml} runs before any parser sees the text: it
 * caps the size, refuses a DOCTYPE or ENTITY declaration outright (the door to XXE and entity
 * expansion; none of these protocols uses a DTD) and caps the element nesting depth, so that
 * neither the parser nor the recursive readers built on it can be driven deep.
 *
 * {@link readXml} resolves namespaces (Namespaces in XML 1.0 §5), so callers match elements by
 * namespace name and local name, never by prefix: Windows writes `wsse:`, a WCF server `o:`, and
 * both mean the same element.
 */

export interface XmlLimits {
  /** Largest accepted input, in bytes of UTF-8. */
  readonly maxBytes: number;
  /** Deepest accepted element nesting. */
  readonly maxDepth: number;
  /**
   * Most elements accepted (none by default). The parser's time grows with the elements more
   * than with the bytes: a megabyte of `<a/>` takes it over a second (found by fuzzing).
   */
  readonly maxElements?: number;
}

/** Why {@link guardXml} refused an input. */
export type XmlGuardFailure = 'limit' | 'doctype';

/**
 * Depth of element nesting and the number of elements, by one linear pass that skips comments,
 * CDATA sections, processing instructions and declarations, and reads start tags up to their
 * `>` outside quoted attribute values; it stops as soon as either goes past its maximum. Linear on purpose: the first version looked for the end of each `<!--` from its start,
 * so a message of `<!--` repeated took time quadratic in its size (found by fuzzing: 256 KiB of
 * them held the thread for seconds, 1 MiB for minutes). An unterminated construct ends the scan:
 * the parser refuses the document anyway. A stray end tag cannot lower the depth below zero, so
 * end tags first cannot hide deep nesting after them.
 */
function measure(
  xml: string,
  max: { depth: number; elements: number },
): { deepest: number; elements: number } {
  let depth = 0;
  let deepest = 0;
  let elements = 0;
  const skipTo = (from: number, end: string): number => {
    const at = xml.indexOf(end, from);
    return at < 0 ? -1 : at + end.length;
  };
  for (let i = xml.indexOf('<'); i >= 0 && i < xml.length; i = xml.indexOf('<', i)) {
    let next: number;
    if (xml.startsWith('<!--', i)) next = skipTo(i + 4, '-->');
    else if (xml.startsWith('<![CDATA[', i)) next = skipTo(i + 9, ']]>');
    else if (xml[i + 1] === '?') next = skipTo(i + 2, '?>');
    else if (xml[i + 1] === '!') next = skipTo(i + 2, '>');
    else if (xml[i + 1] === '/') {
      depth = Math.max(0, depth - 1);
      next = skipTo(i + 2, '>');
    } else {
      // A start or empty-element tag: find its '>' outside quotes.
      let j = i + 1;
      let quoted = '';
      for (; j < xml.length; j++) {
        const c = xml[j]!;
        if (quoted) {
          if (c === quoted) quoted = '';
        } else if (c === '"' || c === "'") quoted = c;
        else if (c === '>') break;
      }
      if (j >= xml.length) break;
      if (++elements > max.elements) break;
      if (xml[j - 1] !== '/' && ++depth > deepest && (deepest = depth) > max.depth) break;
      next = j + 1;
    }
    if (next < 0) break;
    i = next;
  }
  return { deepest, elements };
}

/**
 * Checks untrusted XML before it is parsed and returns it as text (bytes are decoded as UTF-8).
 * Refusals are reported through `fail`, so that each protocol throws its own typed error: size,
 * depth or element count over `limits` is `'limit'`, a DOCTYPE or ENTITY declaration anywhere is
 * `'doctype'`.
 */
export function guardXml(
  input: string | Uint8Array,
  limits: XmlLimits,
  fail: (kind: XmlGuardFailure, message: string) => Error,
): string {
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.byteLength;
  if (size > limits.maxBytes)
    throw fail('limit', `message of ${size} bytes exceeds ${limits.maxBytes}`);
  const xml =
    typeof input === 'string' ? input : new TextDecoder('utf-8', { fatal: false }).decode(input);
  if (/<!DOCTYPE|<!ENTITY/i.test(xml))
    throw fail('doctype', 'DOCTYPE and entity declarations are not accepted');
  const maxElements = limits.maxElements ?? Infinity;
  const { deepest, elements } = measure(xml, { depth: limits.maxDepth, elements: maxElements });
  if (deepest > limits.maxDepth)
    throw fail('limit', `elements nested deeper than ${limits.maxDepth}`);
  if (elements > maxElements) throw fail('limit', `more than ${maxElements} elements`);
  return xml;
}

// ---------------------------------------------------------------------------------------------
// Reading, namespace-aware (the reader itself is xml-read.ts).

export { readXml } from './xml-read.ts';

export const XSI_NS = 'http://www.w3.org/2001/XMLSchema-instance';

/** An attribute, its name resolved: `ns` is '' for an unprefixed attribute. */
export interface XmlAttribute {
  readonly ns: string;
  readonly name: string;
  /** The name as written, prefix included. */
  readonly qname: string;
  readonly value: string;
}

/** Character data in an element, as it came: text (entities decoded) or a CDATA section. */
export interface XmlText {
  readonly text: string;
  readonly cdata: boolean;
}

/** An element with its name resolved against the namespace declarations in scope. */
export interface XmlElement {
  /** Namespace name; '' when the element is in no namespace. */
  readonly ns: string;
  readonly name: string;
  /** The name as written, prefix included. */
  readonly qname: string;
  /** Attributes other than namespace declarations. */
  readonly attributes: readonly XmlAttribute[];
  /** Namespace declarations written on this element: prefix ('' for the default) → name. */
  readonly namespaces: Readonly<Record<string, string>>;
  readonly children: readonly XmlElement[];
  /** Child elements and character data in document order (mixed content, as written). */
  readonly content: readonly (XmlElement | XmlText)[];
  /** The element's own character data (text and CDATA), entities decoded, whitespace kept. */
  readonly text: string;
  /** Prefix → namespace name in scope here ('' is the default namespace); resolves QName values. */
  readonly scope: ReadonlyMap<string, string>;
}

/** The first child element with this namespace and local name. */
export function child(element: XmlElement, ns: string, name: string): XmlElement | undefined {
  return element.children.find((c) => c.ns === ns && c.name === name);
}

/** Every child element with this namespace and local name, in document order. */
export function childrenNamed(element: XmlElement, ns: string, name: string): XmlElement[] {
  return element.children.filter((c) => c.ns === ns && c.name === name);
}

/** The value of an attribute; `ns` '' (the default) means an unprefixed attribute. */
export function attribute(element: XmlElement, name: string, ns = ''): string | undefined {
  return element.attributes.find((a) => a.ns === ns && a.name === name)?.value;
}

/** `xsi:nil="true"` (XML Schema Part 1 §2.6.2): the element stands for no value. */
export function isNil(element: XmlElement): boolean {
  const nil = attribute(element, 'nil', XSI_NS)?.trim();
  return nil === 'true' || nil === '1';
}

function split(qname: string): [prefix: string, local: string] {
  const colon = qname.indexOf(':');
  return colon < 0 ? ['', qname] : [qname.slice(0, colon), qname.slice(colon + 1)];
}

/** Resolves a QName written as element content (e.g. a SOAP fault code) in the element's scope. */
export function resolveQName(
  element: XmlElement,
  qname: string,
): { readonly ns: string; readonly name: string } | undefined {
  const [prefix, name] = split(qname.trim());
  const ns = element.scope.get(prefix);
  return ns === undefined ? undefined : { ns, name };
}

/**
 * A value from the input, quoted for an error message: JSON-escaped (no raw newlines or control
 * characters reach a log) and cut to 200 characters.
 */
export function quote(value: string): string {
  return JSON.stringify(value.length > 200 ? `${value.slice(0, 200)}…` : value);
}

// ---------------------------------------------------------------------------------------------
// Writing. Elements are built as ordered nodes (fast-xml-parser's order-preserving shape, which
// the SyncML shape tests read back with that independent parser) and serialised here: a generic builder spent more time on name checks and path matching than
// on the text (fleet profile, issue 5), and these documents need none of that.

/** A node for {@link writeXml}, made by {@link el}. */
export type XmlOut = Record<string, unknown>;

/**
 * An element: `tag` is the qualified name as written, `content` its children or its text, and
 * `attrs` its attributes (namespace declarations included); undefined attributes are left out.
 */
export function el(
  tag: string,
  content: readonly XmlOut[] | string = [],
  attrs?: Readonly<Record<string, string | undefined>>,
): XmlOut {
  const node: XmlOut = {
    [tag]: typeof content === 'string' ? (content === '' ? [] : [{ '#text': content }]) : content,
  };
  if (attrs) {
    const defined = Object.entries(attrs).filter(([, v]) => v !== undefined);
    if (defined.length) node[':@'] = Object.fromEntries(defined.map(([k, v]) => [`@_${k}`, v]));
  }
  return node;
}

const ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  "'": '&apos;',
  '"': '&quot;',
};
const SPECIAL = /[&<>'"]/;
const SPECIALS = /[&<>'"]/g;

/** Text or an attribute value as XML writes it: the five predefined entities escaped. */
export function escapeXml(text: string): string {
  return SPECIAL.test(text) ? text.replace(SPECIALS, (c) => ESCAPES[c]!) : text;
}

/**
 * `<tag attrs>inner</tag>`, or `<tag attrs/>` when `inner` is empty. `inner` is XML already;
 * `attrs` is written as given (see {@link attrText}).
 */
export function wrapXml(tag: string, inner: string, attrs = ''): string {
  return inner === '' ? `<${tag}${attrs}/>` : `<${tag}${attrs}>${inner}</${tag}>`;
}

/** ` name="value"` for each attribute of a node (`@_name` keys), values escaped. */
function attrText(attrs: unknown): string {
  if (attrs === undefined) return '';
  let out = '';
  for (const [k, v] of Object.entries(attrs as Record<string, unknown>))
    out += ` ${k.startsWith('@_') ? k.slice(2) : k}="${escapeXml(String(v))}"`;
  return out;
}

/** A CDATA section holding `text` (a `]]>` inside split across two sections). */
export const cdataXml = (text: string): string =>
  `<![CDATA[${text.replace(/\]\]>/g, ']]]]><![CDATA[>')}]]>`;

/**
 * Serialises ordered nodes (as {@link el} makes them, in fast-xml-parser's order-preserving
 * shape): `#text` escaped, `#cdata` as a CDATA section (a `]]>` inside split
 * across two), `?target` as a processing instruction, an element without content as `<tag/>`.
 */
export function serializeXml(nodes: readonly XmlOut[]): string {
  let out = '';
  for (const n of nodes) {
    let tag: string | undefined;
    for (const k in n)
      if (k !== ':@') {
        tag = k;
        break;
      }
    if (tag === undefined) continue;
    const content = n[tag];
    if (tag === '#text') out += escapeXml(String(content));
    else if (tag === '#cdata') {
      out += cdataXml(String((content as XmlOut[])[0]?.['#text'] ?? ''));
    } else if (tag.startsWith('?')) out += `<${tag}${attrText(n[':@'])}?>`;
    else
      out += wrapXml(
        tag,
        Array.isArray(content) ? serializeXml(content as XmlOut[]) : '',
        attrText(n[':@']),
      );
  }
  return out;
}

/**
 * An element's content written back as XML: its elements under their names as written, with the
 * namespace declarations and attributes written on them, text escaped, CDATA kept as CDATA.
 * Prefixes declared outside the element stay undeclared (the content is a fragment).
 */
export function innerXml(element: XmlElement): string {
  let out = '';
  for (const c of element.content) {
    if ('cdata' in c) out += c.cdata ? cdataXml(c.text) : escapeXml(c.text);
    else {
      let attrs = '';
      for (const prefix in c.namespaces)
        attrs += ` ${prefix === '' ? 'xmlns' : `xmlns:${prefix}`}="${escapeXml(c.namespaces[prefix]!)}"`;
      for (const a of c.attributes) attrs += ` ${a.qname}="${escapeXml(a.value)}"`;
      out += wrapXml(c.qname, innerXml(c), attrs);
    }
  }
  return out;
}

/** Serialises nodes as UTF-8 text, optionally after an XML declaration. */
export function writeXml(nodes: readonly XmlOut[], declaration = false): string {
  const body = serializeXml(nodes);
  return declaration ? `<?xml version="1.0" encoding="UTF-8"?>${body}` : body;
}
