/**
 * The XML reader under {@link readXml}: a strict, single-pass, non-validating XML 1.0 (Fifth
 * Edition) processor with Namespaces in XML 1.0 (Third Edition) that builds the element tree as
 * it reads, over the UTF-16 code units of the text.
 *
 * Why our own (the dependency rule: write it yourself only where no good library exists, and
 * say why). Reading XML was the largest avoidable cost of the fleet benchmark, in the server and
 * the device agent alike: 10–15 % of each main thread and much of their garbage. saxes, which
 * read it before, is conformant but general: a state machine stepping one code point at a time
 * with its line and column, an event per construct, and our tree built from the events. On the
 * 19 messages of testdata/session (5.3 KiB on average) it took 57–61 µs of CPU a message and
 * allocated 136 KiB; this reader takes 18–20 µs (3.1–3.2×: 270–300 MB/s against 88–94) and
 * allocates 40 KiB, nearly all of it the tree it returns (35 KiB); on the MS-MDE2 vectors,
 * 12 µs against 35 (`npm run bench xml` measures both in the same run). parse-xml (@rgrove)
 * was slower than saxes; fast-xml-parser needs a separate validation pass and cost five times
 * as much. What we need is narrow: no DTD (guardXml refuses it before), text already decoded,
 * one tree.
 *
 * The contract is saxes's (with `xmlns: true`), held by a differential test against it
 * (xml-read.test.ts, src/fuzz/xml-differential.test.ts) and by the `xml` fuzz target: every
 * document saxes accepts gives the same tree (character data split where saxes split it: at
 * markup, never at references), and every document it refuses is refused here through `fail`,
 * at the same line and column (the line 1-based, the column counting characters; a CR LF is one
 * line end). Where saxes departs from the specifications, this reader follows them, and
 * xml-testing.ts names each case: an unpaired surrogate is not a character (§2.2); a namespace
 * name is the attribute value as written, not trimmed (Namespaces §2.2, §2.3); a document of
 * another 1.x version is read as XML 1.0 (§2.8); a processing instruction's target is followed
 * by white space or `?>` (§2.6); and a DOCTYPE is refused, not skipped.
 *
 * Costs stay linear in the input whatever it holds: each construct is scanned once, duplicate
 * attributes are found through a set past a few, the namespaces in scope live in one map undone
 * as elements close, nothing recurses, and an element's `scope` map is made only when asked for
 * (saxes's reader copied it at each declaring element: a root declaring 20,000 prefixes over
 * 20,000 declaring children, 650 KB within SyncML's limits, exhausted a 4 GB heap).
 */
import type { XmlAttribute, XmlElement, XmlText } from './xml.ts';

export const XML_NS = 'http://www.w3.org/XML/1998/namespace';
export const XMLNS_NS = 'http://www.w3.org/2000/xmlns/';

type Fail = (message: string) => Error;

// ---------------------------------------------------------------------------------------------
// Character classes.

const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const BANG = 0x21;
const DQUOTE = 0x22;
const HASH = 0x23;
const AMP = 0x26;
const SQUOTE = 0x27;
const SLASH = 0x2f;
const COLON = 0x3a;
const SEMICOLON = 0x3b;
const LT = 0x3c;
const EQUALS = 0x3d;
const GT = 0x3e;
const QUESTION = 0x3f;
const RBRACKET = 0x5d;

/** S (§2.3): space, tab, line feed, carriage return. */
const isS = (c: number): boolean => c === SPACE || c === LF || c === CR || c === TAB;

/** Char (§2.2): the code points a document may hold. */
const isChar = (c: number): boolean =>
  c >= SPACE
    ? c <= 0xd7ff || (c >= 0xe000 && c <= 0xfffd) || (c >= 0x10000 && c <= 0x10ffff)
    : c === TAB || c === LF || c === CR;

const NAME_START = 1;
const NAME = 2;

/**
 * NameStartChar and NameChar (§2.3) for each BMP code point; the astral range of both,
 * #x10000-#xEFFFF, is a high surrogate up to #xDB7F followed by a low one. NCName (Namespaces
 * §3) is the same without the colon.
 */
const NAME_CLASS = (() => {
  const t = new Uint8Array(0x10000);
  const start: [number, number][] = [
    [0x3a, 0x3a],
    [0x41, 0x5a],
    [0x5f, 0x5f],
    [0x61, 0x7a],
    [0xc0, 0xd6],
    [0xd8, 0xf6],
    [0xf8, 0x2ff],
    [0x370, 0x37d],
    [0x37f, 0x1fff],
    [0x200c, 0x200d],
    [0x2070, 0x218f],
    [0x2c00, 0x2fef],
    [0x3001, 0xd7ff],
    [0xf900, 0xfdcf],
    [0xfdf0, 0xfffd],
  ];
  const more: [number, number][] = [
    [0x2d, 0x2e],
    [0x30, 0x39],
    [0xb7, 0xb7],
    [0x300, 0x36f],
    [0x203f, 0x2040],
  ];
  for (const [from, to] of start) t.fill(NAME_START | NAME, from, to + 1);
  for (const [from, to] of more) t.fill(NAME, from, to + 1);
  return t;
})();

const isNCName = (s: string): boolean => !s.includes(':') && isName(s);

function isName(s: string): boolean {
  if (s.length === 0) return false;
  for (let k = 0; k < s.length; k++) {
    const c = s.charCodeAt(k);
    if (NAME_CLASS[c]! & (k === 0 ? NAME_START : NAME)) continue;
    const d = s.charCodeAt(k + 1);
    if (c >= 0xd800 && c <= 0xdb7f && d >= 0xdc00 && d <= 0xdfff) k++;
    else return false;
  }
  return true;
}

/** What character data needs to look at, for ASCII: everything else is plain text. */
const TEXT_PLAIN = 0;
const TEXT_LT = 1;
const TEXT_AMP = 2;
const TEXT_GT = 3;
const TEXT_CR = 4;
const TEXT_BAD = 5;
/** The same for attribute values, where tab and line feed are also special (§3.3.3). */
const TEXT_SPACE = 6;

const TEXT_CLASS = new Uint8Array(128);
const ATTR_CLASS = new Uint8Array(128);
for (let c = 0; c < SPACE; c++) TEXT_CLASS[c] = ATTR_CLASS[c] = TEXT_BAD;
TEXT_CLASS[TAB] = TEXT_CLASS[LF] = TEXT_PLAIN;
ATTR_CLASS[TAB] = ATTR_CLASS[LF] = TEXT_SPACE;
TEXT_CLASS[CR] = ATTR_CLASS[CR] = TEXT_CR;
TEXT_CLASS[LT] = ATTR_CLASS[LT] = TEXT_LT;
TEXT_CLASS[AMP] = ATTR_CLASS[AMP] = TEXT_AMP;
TEXT_CLASS[GT] = TEXT_GT;

/**
 * Characters that text in an element may hold and that need nothing done (sticky; control
 * characters named because XML forbids them).
 */
// oxlint-disable-next-line no-control-regex
const PLAIN_TEXT = /[^\x00-\x08\x0b-\x1f&<>\ud800-\udfff\ufffe\uffff]*/y;
/** The same for attribute values, where tab and line feed are not plain (sticky). */
// oxlint-disable-next-line no-control-regex
const PLAIN_VALUE = /[^\x00-\x1f"&'<\ud800-\udfff\ufffe\uffff]*/y;
/** The end of the run that the sticky regex `re` matches from `k`. */
function runEnd(re: RegExp, xml: string, k: number): number {
  re.lastIndex = k;
  re.test(xml);
  return re.lastIndex;
}

/** Any character but those of Char that need no check (a surrogate is checked as a pair). */
const NOT_PLAIN_CHAR = /[^\t\n\r\x20-\ud7ff\ue000-\ufffd]/;

const PREDEFINED: Readonly<Record<string, string>> = Object.assign(Object.create(null), {
  lt: '<',
  gt: '>',
  amp: '&',
  apos: "'",
  quot: '"',
});

// ---------------------------------------------------------------------------------------------
// The tree.

/** The bindings in scope outside any element (Namespaces §3: `xml` and `xmlns` are built in). */
const ROOT_SCOPE: ReadonlyMap<string, string> = new Map([
  ['', ''],
  ['xml', XML_NS],
  ['xmlns', XMLNS_NS],
]);

/**
 * The lists of every element without attributes, children or content, and the record of every
 * element declaring no namespace: frozen, shared, replaced by its own at the first item.
 */
const NONE: never[] = Object.freeze([]) as never[];
const NO_NAMESPACES: Readonly<Record<string, string>> = Object.freeze(Object.create(null));

/** {@link XmlElement} as the reader builds it; `scope` is made on first use. */
class Element implements XmlElement {
  readonly ns: string;
  readonly name: string;
  readonly qname: string;
  readonly attributes: readonly XmlAttribute[];
  readonly namespaces: Readonly<Record<string, string>>;
  children: Element[] = NONE;
  content: (Element | XmlText)[] = NONE;
  text = '';
  readonly #parent: Element | undefined;
  #scope: ReadonlyMap<string, string> | undefined = undefined;

  constructor(
    ns: string,
    name: string,
    qname: string,
    attributes: readonly XmlAttribute[],
    namespaces: Readonly<Record<string, string>>,
    parent: Element | undefined,
  ) {
    this.ns = ns;
    this.name = name;
    this.qname = qname;
    this.attributes = attributes;
    this.namespaces = namespaces;
    this.#parent = parent;
  }

  /**
   * Prefix → namespace name in scope here: the parent's map itself when this element declares
   * nothing, else a copy of it with this element's declarations (as saxes's reader made them).
   * Made on first use for the ancestors too, outside in, without recursion (depth is unbounded).
   */
  get scope(): ReadonlyMap<string, string> {
    if (this.#scope) return this.#scope;
    const path: Element[] = [this];
    let outer = this.#parent;
    for (; outer && !outer.#scope; outer = outer.#parent) path.push(outer);
    let scope = outer ? outer.#scope! : ROOT_SCOPE;
    for (let k = path.length - 1; k >= 0; k--) {
      const declaring = path[k]!;
      if (declaring.namespaces !== NO_NAMESPACES) {
        const own = new Map(scope);
        for (const prefix in declaring.namespaces) own.set(prefix, declaring.namespaces[prefix]!);
        scope = own;
      }
      declaring.#scope = scope;
    }
    return scope;
  }
}

// ---------------------------------------------------------------------------------------------
// The reader.

/**
 * Line and column of a position as saxes counts them: the line 1-based, CR LF, CR and LF each
 * ending one; the column the number of characters read on the line, the one at fault included
 * (a surrogate pair is one character, a line end leaves it 0).
 */
function lineColumn(xml: string, at: number): string {
  let line = 1;
  let column = 0;
  for (let k = 0; k < at; k++) {
    const c = xml.charCodeAt(k);
    if (c === LF || c === CR) {
      line++;
      column = 0;
      if (c === CR && k + 1 < at && xml.charCodeAt(k + 1) === LF) k++;
    } else {
      column++;
      const d = xml.charCodeAt(k + 1);
      if (c >= 0xd800 && c <= 0xdbff && k + 1 < at && d >= 0xdc00 && d <= 0xdfff) k++;
    }
  }
  return `${line}:${column}`;
}

/** Input text for an error message: JSON-quoted (no raw control characters), cut short. */
const shown = (s: string): string => JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s);

const hex = (c: number): string => `U+${c.toString(16).toUpperCase().padStart(4, '0')}`;

class Reader {
  readonly xml: string;
  readonly len: number;
  readonly fail: Fail;
  root: Element | undefined = undefined;
  /** Open elements, the innermost at `depth - 1` (the list keeps its length: less to allocate). */
  readonly open: Element[] = [];
  depth = 0;
  /** How many namespace declarations each open element made (to undo as it closes). */
  readonly declared: number[] = [];
  /**
   * Namespace bindings in scope, but the default namespace (`defaultNs`); an unbound prefix
   * maps to undefined rather than being deleted: V8 rehashes a Map on a delete and set, so that
   * undoing by deleting was quadratic (a root binding 20,000 prefixes, each of 20,000 children
   * binding one more: 0.65 s).
   */
  readonly bindings = new Map<string, string | undefined>([
    ['xml', XML_NS],
    ['xmlns', XMLNS_NS],
  ]);
  defaultNs = '';
  /** What declarations replaced, to undo when their element closes: prefix, previous binding. */
  readonly undoPrefix: string[] = [];
  readonly undoNs: (string | undefined)[] = [];
  /** The attributes of the start tag being read: qualified name, colon index, value. */
  readonly attrNames: string[] = [];
  readonly attrColons: number[] = [];
  readonly attrValues: string[] = [];
  attrCount = 0;
  declCount = 0;
  /** Where the entity reference or attribute value just read ends. */
  next = 0;
  /** Where the first colon of the name just read is, or -1. */
  colon = -1;

  constructor(xml: string, fail: Fail) {
    this.xml = xml;
    this.len = xml.length;
    this.fail = fail;
  }

  /** Refuses the document at `at` (the index after the character at fault). */
  error(at: number, reason: string): never {
    // A name in the reason may be as long as the document: the message is cut (not in a pair).
    const cut =
      reason.length > 240 ? `${reason.slice(0, 240).replace(/[\ud800-\udbff]$/, '')}…` : reason;
    throw this.fail(`not well-formed XML: ${lineColumn(this.xml, at)}: ${cut}`);
  }

  endOfInput(where: string): never {
    return this.error(this.len, `the document ends ${where}`);
  }

  /** Reports the character at `k` as not allowed, or not allowed there. */
  disallowed(k: number, there: string): never {
    const end = this.charEnd(k);
    return this.error(end, `${shown(this.xml.slice(k, end))} ${there}`);
  }

  /** The index after the character at `k` (< len), which must match Char (§2.2). */
  charEnd(k: number): number {
    const c = this.xml.charCodeAt(k);
    if (c >= SPACE ? c < 0xd800 : c === TAB || c === LF || c === CR) return k + 1;
    if (c >= 0xe000) {
      if (c <= 0xfffd) return k + 1;
    } else if (c >= 0xd800) {
      const d = this.xml.charCodeAt(k + 1);
      if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) return k + 2;
      return this.error(k + 1, `unpaired surrogate ${hex(c)} (not a character, XML 1.0 §2.2)`);
    }
    return this.error(k + 1, `character ${hex(c)} is not allowed in XML (§2.2)`);
  }

  /** Checks that `[from, to)` holds characters only; true when a CR is among them. */
  chars(from: number, to: number): boolean {
    const text = this.xml.slice(from, to);
    if (!NOT_PLAIN_CHAR.test(text)) return text.includes('\r');
    for (let k = from; k < to; k = this.charEnd(k));
    return text.includes('\r');
  }

  skipS(k: number): number {
    while (k < this.len && isS(this.xml.charCodeAt(k))) k++;
    return k;
  }

  isNameStartAt(k: number): boolean {
    const c = this.xml.charCodeAt(k);
    if (c < 0xd800 || c >= 0xe000) return (NAME_CLASS[c]! & NAME_START) !== 0;
    const d = this.xml.charCodeAt(k + 1);
    return c <= 0xdb7f && d >= 0xdc00 && d <= 0xdfff;
  }

  /** The end of the run of NameChar from `k`; `colon` is set to its first colon. */
  nameEnd(k: number): number {
    const { xml, len } = this;
    let colon = -1;
    while (k < len) {
      const c = xml.charCodeAt(k);
      if (c < 0xd800 || c >= 0xe000) {
        if (!(NAME_CLASS[c]! & NAME)) break;
        if (c === COLON && colon < 0) colon = k;
        k++;
      } else {
        const d = xml.charCodeAt(k + 1);
        if (c <= 0xdb7f && d >= 0xdc00 && d <= 0xdfff) k += 2;
        else break;
      }
    }
    this.colon = colon;
    return k;
  }

  read(): Element {
    const { xml, len } = this;
    let k = len > 0 && xml.charCodeAt(0) === 0xfeff ? 1 : 0; // a byte order mark (§4.3.3, F.1)
    const start = k;
    for (;;) {
      k = this.depth ? this.text(k) : this.outside(k);
      if (k >= len) break;
      k = this.markup(k, k === start);
    }
    if (!this.root) return this.error(len, 'no root element');
    if (this.depth)
      return this.error(len, `element <${this.open[this.depth - 1]!.qname}> is not closed`);
    return this.root;
  }

  /** White space around the root element (Misc, §2.8); returns the index of the next `<`. */
  outside(k: number): number {
    const { xml, len } = this;
    let text = false;
    for (; k < len;) {
      const c = xml.charCodeAt(k);
      if (c === LT) break;
      if (c === AMP) return this.error(k + 1, this.outsideRoot('a reference'));
      if (isS(c)) k++;
      else if (text && k === len - 1 && c >= 0xd800 && c <= 0xdbff)
        break; // held back, below
      else {
        text = true;
        k = this.charEnd(k);
      }
    }
    if (!text) return k;
    // saxes reports text where it ends: at the `<`, or at the end of its input, where it holds
    // back a final CR or high surrogate until it knows what follows.
    const last = xml.charCodeAt(len - 1);
    const held = last === CR || (last >= 0xd800 && last <= 0xdbff);
    const at = k < len && xml.charCodeAt(k) === LT ? k + 1 : held ? len - 1 : len;
    return this.error(at, this.outsideRoot('text'));
  }

  outsideRoot(what: string): string {
    return `${what} ${this.root ? 'after' : 'before'} the root element`;
  }

  /**
   * Character data in an element (§2.4, CharData and references): one {@link XmlText} up to the
   * next markup, line ends normalized (§2.11), references replaced. Returns the index of `<`.
   */
  text(from: number): number {
    const { xml, len } = this;
    let k = from;
    let start = from;
    let decoded = '';
    while (k < len) {
      const c = xml.charCodeAt(k);
      if (c < 0x80) {
        const t = TEXT_CLASS[c];
        if (t === TEXT_PLAIN) {
          // Past a few characters, a long run (base64, typically) goes faster by regex.
          if (++k - start >= 16) k = runEnd(PLAIN_TEXT, xml, k);
          continue;
        }
        if (t === TEXT_LT) break;
        if (t === TEXT_AMP) {
          decoded += xml.slice(start, k) + this.reference(k);
          k = start = this.next;
        } else if (t === TEXT_GT) {
          // `]]>` may not appear in content (§2.4); the two characters before a `>` that
          // follows markup are the markup's, so these are text.
          if (xml.charCodeAt(k - 1) === RBRACKET && xml.charCodeAt(k - 2) === RBRACKET)
            return this.error(k + 1, '"]]>" in character data (§2.4)');
          k++;
        } else if (t === TEXT_CR) {
          decoded += `${xml.slice(start, k)}\n`;
          k += xml.charCodeAt(k + 1) === LF ? 2 : 1;
          start = k;
        } else k = this.charEnd(k);
      } else if (c < 0xd800) k++;
      else k = this.charEnd(k);
    }
    if (k > from) this.addText(decoded + xml.slice(start, k), false);
    return k;
  }

  addText(text: string, cdata: boolean): void {
    const parent = this.open[this.depth - 1]!;
    parent.text += text;
    const node: XmlText = { text, cdata };
    if (parent.content === NONE) parent.content = [node];
    else parent.content.push(node);
  }

  /**
   * An entity or character reference at `k` (the `&`), replaced by its text; `next` is set past
   * its `;`. No DTD is read, so the five predefined entities are the only ones (§4.6). Like
   * saxes, the name runs to the `;`, which is where a bad one is reported.
   */
  reference(k: number): string {
    const { xml, len } = this;
    let j = k + 1;
    for (;;) {
      if (j >= len) return this.endOfInput('in an entity reference');
      if (xml.charCodeAt(j) === SEMICOLON) break;
      j = this.charEnd(j);
    }
    this.next = j + 1;
    const name = xml.slice(k + 1, j);
    const predefined = PREDEFINED[name];
    if (predefined !== undefined) return predefined;
    if (name.charCodeAt(0) === HASH) {
      const c = charReference(name);
      if (c < 0)
        return this.error(j + 1, `${shown(`&${name};`)} is not a character reference (§4.1)`);
      return String.fromCodePoint(c);
    }
    if (isNCName(name))
      return this.error(j + 1, `undefined entity &${name}; (no DTD, only the five predefined)`);
    return this.error(j + 1, `${shown(`&${name};`)} is not an entity reference (§4.1)`);
  }

  /** Markup at `k` (a `<`); returns the index after it. `first`: at the document's start. */
  markup(k: number, first: boolean): number {
    const { xml, len } = this;
    if (k + 1 >= len) return this.endOfInput("after '<'");
    const c = xml.charCodeAt(k + 1);
    if (c === SLASH) return this.endTag(k + 2);
    if (c === BANG) return this.bang(k + 2);
    if (c === QUESTION) return this.pi(k + 2, first);
    if (c < 0x80 ? NAME_CLASS[c]! & NAME_START : this.isNameStartAt(k + 1))
      return this.startTag(k + 1);
    return this.disallowed(k + 1, "after '<' (not a name, '/', '!' or '?')");
  }

  /** A start or empty-element tag (§3.1) whose name starts at `k`. */
  startTag(k: number): number {
    const { xml, len } = this;
    const nameEnd = this.nameEnd(k);
    if (nameEnd >= len) return this.endOfInput('in a start tag');
    const qname = xml.slice(k, nameEnd);
    const colon = this.colon < 0 ? -1 : this.colon - k;
    let c = xml.charCodeAt(nameEnd);
    let j = c === GT ? nameEnd + 1 : this.charEnd(nameEnd);
    if (this.root && !this.depth) return this.error(j, `a second root element <${qname}> (§2.1)`);
    this.attrCount = this.declCount = 0;
    if (c === GT) return this.openElement(qname, colon, j, false);
    if (c === SLASH) return this.openElement(qname, colon, this.slash(j), true);
    if (!isS(c)) return this.error(j, `${shown(xml.slice(nameEnd, j))} in the tag name ${qname}`);
    for (;;) {
      j = this.skipS(j);
      if (j >= len) return this.endOfInput(`in the start tag <${qname}>`);
      c = xml.charCodeAt(j);
      if (c === GT) return this.openElement(qname, colon, j + 1, false);
      if (c === SLASH) return this.openElement(qname, colon, this.slash(j + 1), true);
      if (!this.isNameStartAt(j)) return this.disallowed(j, `in the start tag <${qname}>`);
      j = this.attribute(j);
      if (j >= len) return this.endOfInput(`in the start tag <${qname}>`);
      c = xml.charCodeAt(j);
      if (c === GT) return this.openElement(qname, colon, j + 1, false);
      if (c === SLASH) return this.openElement(qname, colon, this.slash(j + 1), true);
      if (!isS(c)) {
        if (this.isNameStartAt(j))
          return this.error(this.charEnd(j), 'no white space between attributes (§3.1)');
        return this.disallowed(j, `after an attribute value in <${qname}>`);
      }
    }
  }

  /** After the `/` of an empty-element tag: the index after its `>`. */
  slash(k: number): number {
    if (k >= this.len) return this.endOfInput('in an empty-element tag');
    if (this.xml.charCodeAt(k) !== GT) return this.disallowed(k, "after '/' in a tag");
    return k + 1;
  }

  /**
   * An attribute (§3.1 Attribute) starting at `k`: its value normalized (§3.3.3, as CDATA)
   * and, for a namespace declaration, checked (Namespaces §3). Returns the index after it.
   */
  attribute(k: number): number {
    const { xml, len } = this;
    const nameEnd = this.nameEnd(k);
    const qname = xml.slice(k, nameEnd);
    let j = nameEnd;
    if (j >= len) return this.endOfInput('in an attribute name');
    const c = xml.charCodeAt(j);
    if (c !== EQUALS) {
      if (c === GT) return this.error(j + 1, `attribute ${qname} without a value`);
      if (!isS(c)) return this.disallowed(j, `in the attribute name ${qname}`);
      j = this.skipS(j);
      if (j >= len) return this.endOfInput('in an attribute');
      if (xml.charCodeAt(j) !== EQUALS)
        return this.error(this.charEnd(j), `attribute ${qname} without a value`);
    }
    j = this.skipS(j + 1);
    if (j >= len) return this.endOfInput('in an attribute');
    const quote = xml.charCodeAt(j);
    if (quote !== DQUOTE && quote !== SQUOTE)
      return this.disallowed(j, `instead of a quoted value for ${qname}`);
    const value = this.attributeValue(j + 1, quote);
    j = this.next;
    const colon = this.colon < 0 ? -1 : this.colon - k;
    if (colon >= 0 && (colon === 0 || colon === qname.length - 1 || qname.includes(':', colon + 1)))
      return this.error(j, `attribute name ${qname} is not a QName (Namespaces §3)`);
    if (colon === 5 && qname.startsWith('xmlns')) {
      if (value === '')
        return this.error(j, `${qname}="" undeclares a prefix, which XML 1.0 does not allow`);
      this.checkBinding(qname.slice(6), value, j);
      this.declCount++;
    } else if (qname === 'xmlns') {
      this.checkBinding('', value, j);
      this.declCount++;
    }
    const n = this.attrCount++;
    this.attrNames[n] = qname;
    this.attrColons[n] = colon;
    this.attrValues[n] = value;
    return j;
  }

  /** Namespaces §3, Reserved Prefixes and Namespace Names. */
  checkBinding(prefix: string, ns: string, at: number): void {
    if (prefix === 'xml' && ns !== XML_NS)
      this.error(at, `the prefix xml may be bound only to ${XML_NS}`);
    if (prefix === 'xmlns') this.error(at, 'the prefix xmlns may not be declared');
    if (ns === XMLNS_NS) this.error(at, `${XMLNS_NS} may not be bound to a prefix`);
    if (ns === XML_NS && prefix !== 'xml')
      this.error(at, `${XML_NS} may be bound only to the prefix xml`);
  }

  /** An attribute value after its opening quote; `next` is set past the closing one. */
  attributeValue(from: number, quote: number): string {
    const { xml, len } = this;
    let k = from;
    let start = from;
    let value = '';
    for (;;) {
      if (k >= len) return this.endOfInput('in an attribute value');
      const c = xml.charCodeAt(k);
      if (c < 0x80) {
        if (c === quote) break;
        const t = ATTR_CLASS[c];
        if (t === TEXT_PLAIN) {
          if (++k - start >= 16) k = runEnd(PLAIN_VALUE, xml, k);
        } else if (t === TEXT_AMP) {
          value += xml.slice(start, k) + this.reference(k);
          k = start = this.next;
        } else if (t === TEXT_SPACE || t === TEXT_CR) {
          value += `${xml.slice(start, k)} `;
          k += t === TEXT_CR && xml.charCodeAt(k + 1) === LF ? 2 : 1;
          start = k;
        } else if (t === TEXT_LT) return this.error(k + 1, "'<' in an attribute value (§3.1)");
        else k = this.charEnd(k);
      } else if (c < 0xd800) k++;
      else k = this.charEnd(k);
    }
    this.next = k + 1;
    return value + xml.slice(start, k);
  }

  /**
   * The element of a start tag just read (`at` is after its `>`): names resolved (Namespaces
   * §5), attributes unique (§3.1, Namespaces §6.3), declarations in scope until it closes.
   */
  openElement(qname: string, colon: number, at: number, empty: boolean): number {
    let prefix = '';
    let name = qname;
    if (colon >= 0) {
      prefix = qname.slice(0, colon);
      name = qname.slice(colon + 1);
      if (colon === 0 || name === '' || name.includes(':'))
        return this.error(at, `element name ${qname} is not a QName (Namespaces §3)`);
    }
    let namespaces = NO_NAMESPACES;
    if (this.declCount) namespaces = this.declare(at);
    let ns = this.defaultNs;
    if (colon >= 0) {
      if (prefix === 'xmlns') return this.error(at, `element ${qname} has the prefix xmlns`);
      const bound = this.bindings.get(prefix);
      if (bound === undefined) return this.error(at, `unbound namespace prefix ${shown(prefix)}`);
      ns = bound;
    }
    const attributes = this.attrCount > this.declCount ? this.resolveAttributes(at) : NONE;
    const depth = this.depth;
    const parent = depth ? this.open[depth - 1] : undefined;
    const element = new Element(ns, name, qname, attributes, namespaces, parent);
    if (!parent) this.root = element;
    else {
      if (parent.content === NONE) parent.content = [element];
      else parent.content.push(element);
      if (parent.children === NONE) parent.children = [element];
      else parent.children.push(element);
    }
    if (empty) {
      if (this.declCount) this.undo(this.declCount);
    } else {
      this.open[depth] = element;
      this.declared[depth] = this.declCount;
      this.depth = depth + 1;
    }
    return at;
  }

  /**
   * Puts the start tag's namespace declarations in scope; returns them by prefix. A prefix
   * declared twice is a duplicate attribute (Namespaces §6.3).
   */
  declare(at: number): Record<string, string> {
    const namespaces: Record<string, string> = Object.create(null);
    for (let n = 0; n < this.attrCount; n++) {
      const qname = this.attrNames[n]!;
      const colon = this.attrColons[n]!;
      let prefix: string;
      if (colon === 5 && qname.startsWith('xmlns')) prefix = qname.slice(6);
      else if (qname === 'xmlns') prefix = '';
      else continue;
      const ns = this.attrValues[n]!;
      if (prefix in namespaces) return this.duplicate(at, qname);
      namespaces[prefix] = ns;
      this.undoPrefix.push(prefix);
      if (prefix === '') {
        this.undoNs.push(this.defaultNs);
        this.defaultNs = ns;
      } else {
        this.undoNs.push(this.bindings.get(prefix));
        this.bindings.set(prefix, ns);
      }
    }
    return namespaces;
  }

  /** The attributes of the start tag but its namespace declarations, names resolved. */
  resolveAttributes(at: number): XmlAttribute[] {
    const attributes: XmlAttribute[] = [];
    for (let n = 0; n < this.attrCount; n++) {
      const qname = this.attrNames[n]!;
      const colon = this.attrColons[n]!;
      if (colon < 0) {
        if (qname !== 'xmlns')
          attributes.push({ ns: '', name: qname, qname, value: this.attrValues[n]! });
        continue;
      }
      const prefix = qname.slice(0, colon);
      if (prefix === 'xmlns') continue;
      const ns = this.bindings.get(prefix);
      if (ns === undefined) return this.error(at, `unbound namespace prefix ${shown(prefix)}`);
      attributes.push({ ns, name: qname.slice(colon + 1), qname, value: this.attrValues[n]! });
    }
    if (attributes.length > 1) this.unique(attributes, at);
    return attributes;
  }

  /**
   * No two attributes with the same namespace name and local name (§3.1, Namespaces §6.3), which
   * covers the same name written twice. Pairwise for a few, through a set for many (hostile
   * tags have thousands).
   */
  unique(attributes: readonly XmlAttribute[], at: number): void {
    const n = attributes.length;
    if (n <= 8) {
      for (let a = 1; a < n; a++) {
        const { ns, name } = attributes[a]!;
        for (let b = 0; b < a; b++)
          if (attributes[b]!.name === name && attributes[b]!.ns === ns)
            return this.duplicate(at, attributes[a]!.qname);
      }
      return;
    }
    const seen = new Set<string>();
    for (const { ns, name, qname } of attributes) {
      const key = `${name} ${ns}`; // a name holds no space
      if (seen.has(key)) return this.duplicate(at, qname);
      seen.add(key);
    }
  }

  duplicate(at: number, qname: string): never {
    return this.error(at, `duplicate attribute ${qname} (§3.1, Namespaces §6.3)`);
  }

  /** Takes back the last `count` declarations. */
  undo(count: number): void {
    for (; count > 0; count--) {
      const prefix = this.undoPrefix.pop()!;
      const ns = this.undoNs.pop();
      if (prefix === '') this.defaultNs = ns!;
      else this.bindings.set(prefix, ns);
    }
  }

  /** An end tag (§3.1 ETag) whose name starts at `k`. */
  endTag(k: number): number {
    const { xml, len, open, depth } = this;
    const top = depth ? open[depth - 1] : undefined;
    let at: number;
    if (top && xml.charCodeAt(k + top.qname.length) === GT && xml.startsWith(top.qname, k))
      at = k + top.qname.length + 1; // the usual case: `</name>`, the open element's name
    else {
      const nameEnd = this.nameEnd(k);
      if (nameEnd >= len) return this.endOfInput('in an end tag');
      let c = xml.charCodeAt(nameEnd);
      at = this.charEnd(nameEnd);
      const name = xml.slice(k, nameEnd);
      const where = name ? `in the end tag ${name}` : 'in an end tag';
      if (c !== GT) {
        if (!isS(c)) return this.error(at, `${shown(xml.slice(nameEnd, at))} ${where}`);
        const j = this.skipS(at);
        if (j >= len) return this.endOfInput('in an end tag');
        c = xml.charCodeAt(j);
        at = this.charEnd(j);
        if (c !== GT) return this.error(at, `${shown(xml.slice(j, at))} ${where}`);
      }
      if (nameEnd === k) return this.error(at, 'an end tag without a name');
      if (!top) return this.error(at, `end tag </${name}> without a start tag`);
      if (name !== top.qname)
        return this.error(at, `end tag </${name}> does not match <${top.qname}> (§3)`);
    }
    // The element closes: its declarations go out of scope.
    const declared = this.declared[--this.depth]!;
    if (declared) this.undo(declared);
    return at;
  }

  /** After `<!` at `k`: a comment or a CDATA section (no DTD: a DOCTYPE is refused). */
  bang(k: number): number {
    const xml = this.xml;
    if (xml.startsWith('--', k)) return this.comment(k + 2);
    if (xml.startsWith('[CDATA[', k)) {
      if (!this.depth) return this.error(k + 7, this.outsideRoot('a CDATA section'));
      return this.cdata(k + 7);
    }
    if (xml.startsWith('DOCTYPE', k))
      return this.error(k + 7, 'a document type declaration (not accepted here)');
    // saxes tells these apart after seven UTF-16 units (CR LF counting as one).
    let units = 0;
    while (units < 7) {
      if (k >= this.len) return this.endOfInput("after '<!'");
      if (xml.charCodeAt(k) === CR) {
        k += xml.charCodeAt(k + 1) === LF ? 2 : 1;
        units++;
      } else {
        const end = this.charEnd(k);
        units += end - k;
        k = end;
      }
    }
    return this.error(k, "'<!' not followed by '--' or '[CDATA['");
  }

  /** A comment (§2.5) after its `<!--`; `--` may appear only in its `-->`. */
  comment(k: number): number {
    const end = this.xml.indexOf('--', k);
    this.chars(k, end < 0 ? this.len : end);
    if (end < 0 || end + 2 >= this.len) return this.endOfInput('in a comment');
    if (this.xml.charCodeAt(end + 2) !== GT)
      return this.disallowed(end + 2, "after '--' in a comment");
    return end + 3;
  }

  /** A CDATA section (§2.7) after its `<![CDATA[`: one {@link XmlText}, empty or not. */
  cdata(k: number): number {
    const end = this.xml.indexOf(']]>', k);
    const cr = this.chars(k, end < 0 ? this.len : end);
    if (end < 0) return this.endOfInput('in a CDATA section');
    const text = this.xml.slice(k, end);
    this.addText(cr ? text.replace(/\r\n?/g, '\n') : text, true);
    return end + 3;
  }

  /**
   * A processing instruction (§2.6) after its `<?`, or the XML declaration (§2.8) when it is
   * `<?xml` at the document's start (`first`).
   */
  pi(k: number, first: boolean): number {
    const { xml, len } = this;
    if (k >= len) return this.endOfInput('in a processing instruction');
    const c = xml.charCodeAt(k);
    if (!this.isNameStartAt(k) || c === COLON)
      return this.disallowed(
        k,
        c === QUESTION || isS(c)
          ? 'where a processing instruction target should be'
          : 'at the start of a processing instruction target',
      );
    const nameEnd = this.nameEnd(k);
    const targetEnd = this.colon < 0 ? nameEnd : this.colon; // an NCName
    if (targetEnd >= len) return this.endOfInput('in a processing instruction');
    const t = xml.charCodeAt(targetEnd);
    const after = this.charEnd(targetEnd);
    if (t !== QUESTION && !isS(t))
      return this.error(
        after,
        `${shown(xml.slice(targetEnd, after))} in a processing instruction target`,
      );
    const target = xml.slice(k, targetEnd);
    if (target === 'xml') {
      if (!first) return this.error(after, 'an XML declaration not at the start of the document');
      return this.declaration(targetEnd);
    }
    let end: number;
    if (t === QUESTION) {
      if (after >= len) return this.endOfInput('in a processing instruction');
      if (xml.charCodeAt(after) !== GT)
        return this.disallowed(
          after,
          `after ${shown(`<?${target}?`)} (a processing instruction, §2.6)`,
        );
      end = targetEnd;
    } else {
      end = xml.indexOf('?>', after);
      this.chars(after, end < 0 ? len : end);
      if (end < 0) return this.endOfInput('in a processing instruction');
    }
    if (/^[Xx][Mm][Ll]$/.test(target))
      return this.error(end + 2, `processing instruction target ${target} is reserved (§2.6)`);
    return end + 2;
  }

  /**
   * The XML declaration (§2.8 XMLDecl) from the character after `<?xml`: version, then optional
   * encoding and standalone, in that order. Any 1.x version is read as XML 1.0 (§2.8).
   */
  declaration(k: number): number {
    const { xml, len } = this;
    const expected = [['version'], ['encoding', 'standalone'], ['standalone'], []];
    let state = 0;
    if (xml.charCodeAt(k) === QUESTION) return this.declarationEnd(k + 1, state > 0);
    k++;
    for (;;) {
      k = this.skipS(k);
      if (k >= len) return this.endOfInput('in the XML declaration');
      if (xml.charCodeAt(k) === QUESTION) return this.declarationEnd(k + 1, state > 0);
      const nameStart = k;
      let c = 0;
      for (k = this.charEnd(k); ; k = this.charEnd(k)) {
        if (k >= len) return this.endOfInput('in the XML declaration');
        c = xml.charCodeAt(k);
        if (c === EQUALS || c === QUESTION || isS(c)) break;
      }
      const name = xml.slice(nameStart, k++);
      if (c === QUESTION) return this.error(k, `the XML declaration ends after ${shown(name)}`);
      const allowed = expected[state]!;
      const i = allowed.indexOf(name);
      if (i < 0)
        return this.error(
          k,
          `${shown(name)} in the XML declaration, expected ${allowed.join(' or ') || "'?>'"}`,
        );
      state += i + 1;
      if (c !== EQUALS) {
        k = this.skipS(k);
        if (k >= len) return this.endOfInput('in the XML declaration');
        if (xml.charCodeAt(k) !== EQUALS)
          return this.disallowed(k, `instead of '=' after ${name} in the XML declaration`);
        k++;
      }
      k = this.skipS(k);
      if (k >= len) return this.endOfInput('in the XML declaration');
      const quote = xml.charCodeAt(k);
      if (quote !== DQUOTE && quote !== SQUOTE)
        return this.disallowed(k, `instead of a quoted value for ${name} in the XML declaration`);
      const valueStart = ++k;
      for (; ; k = this.charEnd(k)) {
        if (k >= len) return this.endOfInput('in the XML declaration');
        c = xml.charCodeAt(k);
        if (c === quote || c === QUESTION) break;
      }
      if (c === QUESTION) return this.error(k + 1, `the XML declaration ends in the ${name} value`);
      const value = xml.slice(valueStart, k++);
      const valid =
        name === 'version'
          ? /^1\.[0-9]+$/.test(value)
          : name === 'encoding'
            ? /^[A-Za-z][A-Za-z0-9._-]*$/.test(value)
            : value === 'yes' || value === 'no';
      if (!valid) return this.error(k, `${name}=${shown(value)} in the XML declaration (§2.8)`);
      if (k >= len) return this.endOfInput('in the XML declaration');
      c = xml.charCodeAt(k);
      if (c === QUESTION) return this.declarationEnd(k + 1, true);
      if (!isS(c))
        return this.disallowed(k, 'after a value in the XML declaration (white space needed)');
      k++;
    }
  }

  declarationEnd(k: number, version: boolean): number {
    if (k >= this.len) return this.endOfInput('in the XML declaration');
    if (this.xml.charCodeAt(k) !== GT)
      return this.disallowed(k, "after '?' in the XML declaration");
    if (!version) return this.error(k + 1, 'an XML declaration without a version (§2.8)');
    return k + 1;
  }
}

/** The code point of a character reference (`#…` between `&` and `;`), or -1 (§4.1 CharRef). */
function charReference(name: string): number {
  const isHex = name.charCodeAt(1) === 0x78; // only a lower-case x
  const from = isHex ? 2 : 1;
  if (name.length <= from) return -1;
  let c = 0;
  for (let k = from; k < name.length; k++) {
    const d = name.charCodeAt(k);
    let digit: number;
    if (d >= 0x30 && d <= 0x39) digit = d - 0x30;
    else if (isHex && ((d >= 0x41 && d <= 0x46) || (d >= 0x61 && d <= 0x66)))
      digit = (d | 0x20) - 0x57;
    else return -1;
    c = Math.min(c * (isHex ? 16 : 10) + digit, 0x110000);
  }
  return isChar(c) ? c : -1;
}

/**
 * Parses a document (already passed through guardXml) into its root element, namespaces
 * resolved. Anything that is not well-formed XML 1.0 with namespaces (an unbound prefix, a
 * duplicate attribute, an undefined entity, text or a second element outside the root, a
 * character XML does not allow, a DOCTYPE) is reported through `fail`, with a message
 * `not well-formed XML: LINE:COLUMN: reason`. Comments and processing instructions are dropped.
 */
export function readXml(xml: string, fail: Fail): XmlElement {
  return new Reader(xml, fail).read();
}
