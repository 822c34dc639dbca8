/**
 * The reference for xml-read.ts, for its differential test, the `xml` fuzz target and the `xml`
 * benchmark: readXml as it was when saxes read the XML (saxes is a devDependency now), a
 * canonical form of a tree, and one comparison of the two readers on a document.
 *
 * Where saxes departs from XML 1.0 or Namespaces in XML, our reader follows the specifications;
 * {@link compareReaders} knows each such case (see {@link SaxesDeviation}), so that neither a
 * test nor the fuzzer reports it as a disagreement, and checks that ours refuses what it must.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { SaxesParser } from 'saxes';
import { readXml, XMLNS_NS } from './xml-read.ts';
import {
  guardXml,
  type XmlAttribute,
  type XmlElement,
  type XmlLimits,
  type XmlText,
} from './xml.ts';

type Fail = (message: string) => Error;

/** Ways saxes 6 reads a document differently from the specifications (and from our reader). */
export type SaxesDeviation =
  /**
   * An unpaired surrogate is not a character (XML 1.0 §2.2), but saxes decodes a high surrogate
   * with whatever follows it (swallowing a `<` or a quote) and accepts one at the end.
   */
  | 'unpaired-surrogate'
  /**
   * saxes trims a namespace declaration's value (`xmlns:p=" urn:x "` binds `urn:x`, and `" "`
   * undeclares); its namespace name is the value as written (Namespaces §2.2, §2.3: compared
   * character by character).
   */
  | 'trimmed-namespace'
  /**
   * saxes reads past `<?target?` not followed by `>` as the start of the instruction's data;
   * the target is followed by white space or `?>` (XML 1.0 §2.6, production 16).
   */
  | 'pi-target-question'
  /** saxes skips a DOCTYPE; our reader reads no DTD and refuses it (guardXml does before it). */
  | 'doctype';

/** The error of a refusal through `fail`, to tell it from anything else thrown. */
export class XmlRefusal extends Error {
  override readonly name = 'XmlRefusal';
}

const refuse: Fail = (message) => new XmlRefusal(message);

const ROOT_SCOPE: ReadonlyMap<string, string> = new Map([
  ['', ''],
  ['xml', 'http://www.w3.org/XML/1998/namespace'],
  ['xmlns', XMLNS_NS],
]);

interface Building {
  ns: string;
  name: string;
  qname: string;
  attributes: XmlAttribute[];
  namespaces: Readonly<Record<string, string>>;
  children: Building[];
  content: (Building | XmlText)[];
  text: string;
  scope: ReadonlyMap<string, string>;
}

/**
 * readXml before xml-read.ts: saxes with namespaces, building the tree from its events. One
 * change: a document declaring another 1.x version is read as XML 1.0 (`forceXMLVersion`), as
 * XML 1.0 §2.8 requires of an XML 1.0 processor (saxes alone applies XML 1.1's rules to it).
 * (Hooking more of saxes's events than these five costs a factor of six: V8 then keeps the
 * parser's properties in a dictionary. Deviations are found without them.)
 */
export function readXmlWithSaxes(xml: string, fail: Fail): XmlElement {
  const parser = new SaxesParser({ xmlns: true, defaultXMLVersion: '1.0', forceXMLVersion: true });
  const stack: Building[] = [];
  let root: Building | undefined;
  parser.on('error', (e) => {
    throw fail(`not well-formed XML: ${e.message}`);
  });
  parser.on('opentag', (tag) => {
    const parent = stack[stack.length - 1];
    const inherited = parent?.scope ?? ROOT_SCOPE;
    let scope = inherited;
    for (const prefix in tag.ns) {
      if (scope === inherited) scope = new Map(inherited);
      (scope as Map<string, string>).set(prefix, tag.ns[prefix]!);
    }
    const attributes: XmlAttribute[] = [];
    for (const key in tag.attributes) {
      const a = tag.attributes[key]!;
      if (a.uri === XMLNS_NS) continue;
      attributes.push({ ns: a.uri, name: a.local, qname: a.name, value: a.value });
    }
    const element: Building = {
      ns: tag.uri,
      name: tag.local,
      qname: tag.name,
      attributes,
      namespaces: tag.ns,
      children: [],
      content: [],
      text: '',
      scope,
    };
    if (parent) {
      parent.children.push(element);
      parent.content.push(element);
    } else root = element;
    stack.push(element);
  });
  parser.on('closetag', () => {
    stack.pop();
  });
  const addText = (text: string, cdata: boolean) => {
    const e = stack[stack.length - 1];
    if (!e) return;
    e.text += text;
    e.content.push({ text, cdata });
  };
  parser.on('text', (t) => addText(t, false));
  parser.on('cdata', (t) => addText(t, true));
  parser.write(xml).close();
  if (!root) throw fail('expected one root element, found 0');
  return root;
}

/**
 * Every field of a tree as text, one line per element or text in document order: names,
 * attributes, declarations, text, the scope's entries (in order) and whether it is the parent's
 * own map. Throws if `children` is not the elements of `content`. Iterative: depth is unbounded.
 */
export function canonicalXml(root: XmlElement): string {
  const lines: string[] = [];
  const work: { node: XmlElement | XmlText; parent: XmlElement | undefined; depth: number }[] = [
    { node: root, parent: undefined, depth: 0 },
  ];
  while (work.length) {
    const { node, parent, depth } = work.pop()!;
    if ('cdata' in node) {
      lines.push(`${depth} ${JSON.stringify(node)}`);
      continue;
    }
    const elements = node.content.filter((c): c is XmlElement => !('cdata' in c));
    if (elements.length !== node.children.length || elements.some((e, i) => e !== node.children[i]))
      throw new Error(`<${node.qname}>: children are not the elements of content`);
    lines.push(
      `${depth} ${JSON.stringify({
        ns: node.ns,
        name: node.name,
        qname: node.qname,
        attributes: node.attributes.map((a) => [a.ns, a.name, a.qname, a.value]),
        namespaces: Object.entries(node.namespaces),
        text: node.text,
        scope: parent && node.scope === parent.scope ? 'parent' : [...node.scope],
      })}`,
    );
    for (let i = node.content.length - 1; i >= 0; i--)
      work.push({ node: node.content[i]!, parent: node, depth: depth + 1 });
  }
  return lines.join('\n');
}

/** What a reader made of a document: a tree in canonical form, or the message it refused with. */
export type XmlOutcome = { readonly tree: string } | { readonly refused: string };

/** Reads with `read`; anything thrown other than a refusal through `fail` is thrown on. */
function outcome(read: (xml: string, fail: Fail) => XmlElement, xml: string): XmlOutcome {
  try {
    return { tree: canonicalXml(read(xml, refuse)) };
  } catch (e) {
    if (e instanceof XmlRefusal) return { refused: e.message };
    throw e;
  }
}

/** Line and column of a refusal, comparable (line first). */
function place(message: string): [line: number, column: number] | undefined {
  const m = /^not well-formed XML: (\d+):(\d+): /.exec(message);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

const before = (a: readonly number[] | undefined, b: readonly number[] | undefined) =>
  !!a && !!b && (a[0]! < b[0]! || (a[0] === b[0] && a[1]! < b[1]!));

/**
 * Our refusals of what saxes gets wrong: the reason xml-read.ts gives, and what the document
 * must hold for that reason to be true (so that a wrong refusal is not taken for one of these).
 */
const DEVIATION_REASONS: readonly [SaxesDeviation, RegExp, (xml: string) => boolean][] = [
  ['unpaired-surrogate', /: unpaired surrogate U\+/, (xml) => !xml.isWellFormed()],
  [
    'pi-target-question',
    /: ".*" after "<\?.*" \(a processing instruction/,
    (xml) => /<\?[^\t\n\r ?]+\?(?!>)/.test(xml),
  ],
  ['doctype', /: a document type declaration/, (xml) => xml.includes('<!DOCTYPE')],
];

/**
 * Whether a namespace declaration's value may read differently trimmed: white space (as
 * String.prototype.trim sees it) or a reference at either end. Found in the text, so it may
 * also be a declaration inside a comment: such a document is then not compared, which loses
 * a comparison but never reports a false one.
 */
function mayTrimNamespace(xml: string): boolean {
  for (const m of xml.matchAll(/xmlns(?::[^\s=>]*)?\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) {
    const value = m[1] ?? m[2]!;
    if (value.trim() !== value || value.startsWith('&') || value.endsWith(';')) return true;
  }
  return false;
}

export interface Comparison {
  /** What differs, or undefined when both readers agree. */
  readonly disagreement: string | undefined;
  readonly ours: XmlOutcome;
  readonly saxes: XmlOutcome;
  /** The saxes deviation the document runs into, if any (see {@link SaxesDeviation}). */
  readonly deviation: SaxesDeviation | undefined;
}

/**
 * Reads `xml` with both readers. They agree when both accept with the same tree, or both refuse
 * at the same line and column (the reasons are worded differently), each through `fail`. Where
 * ours refuses what saxes gets wrong, saxes must not have refused anything earlier; where a
 * namespace name may be trimmed, the readers are not compared. An exception other than a
 * refusal escapes from ours; from saxes it counts as a refusal (saxes has no such contract).
 */
export function compareReaders(xml: string): Comparison {
  const ours = outcome(readXml, xml);
  let saxes: XmlOutcome;
  try {
    saxes = outcome(readXmlWithSaxes, xml);
  } catch (e) {
    saxes = { refused: `saxes threw ${String(e)}` };
  }
  const ourRefusal = 'refused' in ours ? ours.refused : undefined;
  const saxesRefusal = 'refused' in saxes ? saxes.refused : undefined;
  let deviation = DEVIATION_REASONS.find(
    ([, reason, holds]) => ourRefusal !== undefined && reason.test(ourRefusal) && holds(xml),
  )?.[0];
  if (!deviation && mayTrimNamespace(xml)) deviation = 'trimmed-namespace';
  let disagreement: string | undefined;
  if (deviation === 'trimmed-namespace') disagreement = undefined;
  else if (deviation) {
    if (saxesRefusal !== undefined && before(place(saxesRefusal), place(ourRefusal!)))
      disagreement = `saxes refuses before ours: ${saxesRefusal} | ours: ${ourRefusal}`;
  } else if ('tree' in ours && 'tree' in saxes) {
    if (ours.tree !== saxes.tree) disagreement = 'the trees differ';
  } else if (ourRefusal === undefined)
    disagreement = `ours accepts, saxes refuses: ${saxesRefusal}`;
  else if (saxesRefusal === undefined) disagreement = `ours refuses, saxes accepts: ${ourRefusal}`;
  else if (`${place(ourRefusal)}` !== `${place(saxesRefusal)}`)
    disagreement = `refused at another place: ${ourRefusal} | saxes: ${saxesRefusal}`;
  return { disagreement, ours, saxes, deviation };
}

/**
 * What the readers are compared on in {@link differential}: within these limits saxes reads in
 * time near linear. Past them it does not (its prefix lookup walks every open element: 130,000
 * nested elements took it six minutes), nor does the reference's tree (saxes's reader copied
 * the scope map at each declaring element: a root declaring 20,000 prefixes over 20,000
 * declaring children exhausts a 4 GB heap), nor the canonical form (it spells out every scope).
 */
export const COMPARED_LIMITS: XmlLimits = { maxBytes: 256 * 1024, maxDepth: 64, maxElements: 8192 };
const COMPARED_DECLARATIONS = 512;

/**
 * The differential check of the `xml` fuzz target and its test, on a document as guardXml would
 * pass it on: the readers' disagreement (see {@link compareReaders}), or undefined. A document
 * the guard refuses with {@link COMPARED_LIMITS} (or declaring more than 512 namespaces) is read
 * by ours alone, which must then return or refuse through `fail`.
 */
export function differential(xml: string): string | undefined {
  let compared = (xml.match(/xmlns/g)?.length ?? 0) <= COMPARED_DECLARATIONS;
  try {
    guardXml(xml, COMPARED_LIMITS, () => new Error('past the limits'));
  } catch {
    compared = false;
  }
  if (compared) return compareReaders(xml).disagreement;
  try {
    readXml(xml, refuse);
  } catch (e) {
    if (!(e instanceof XmlRefusal)) throw e;
  }
  return undefined;
}

const SRC = new URL('../', import.meta.url);

/**
 * Every XML document the repository keeps under src/ (test vectors, fuzz regressions gunzipped,
 * the DDF files without their DOCTYPE, as ddf.ts reads them), by path, sorted.
 */
export function repositoryXml(): { readonly path: string; readonly xml: string }[] {
  const out: { path: string; xml: string }[] = [];
  const paths = readdirSync(SRC, { recursive: true, encoding: 'utf8' }).toSorted();
  for (const path of paths) {
    if (!path.endsWith('.xml') && !path.endsWith('.xml.gz')) continue;
    const raw = readFileSync(new URL(path, SRC));
    let xml = (path.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8');
    if (/\/ddf[^/]*\//.test(`/${path}`))
      xml = xml.replace(/<!DOCTYPE[^[>]*(?:\[[\s\S]*?\])?\s*>/, '');
    out.push({ path, xml });
  }
  return out;
}

const long = (s: string, n: number) => s.repeat(n);

/**
 * Hand-written documents at the edges of XML 1.0 and Namespaces: each construct well-formed and
 * broken in the ways a reader can get wrong (white space and quotes in tags, references,
 * characters outside Char, CDATA and comment ends, the XML declaration, reserved prefixes and
 * names, line ends, truncation at every kind of markup). The differential test and the fuzz
 * target's seeds.
 */
// prettier-ignore
export const XML_CASES: readonly string[] = [
  // Documents and what may surround the root.
  '', ' ', '<', '<a', '<a>', '<a/>', '<a></a>', '<a></b>', '</a>', '<a/></a>', '<a/><b/>', '<a/>x',
  'x<a/>', '&amp;<a/>', '<a/>&amp;', ' <a/> ', '<a/><!--c-->', '<!--c--><a/>', '<?pi?><a/>',
  '<a/><?pi x?>', '<a>\n</a>\n', '<a/>\n<!-- -->\n', '\ufeff<a/>', '\ufeff\ufeff<a/>',
  // The XML declaration.
  '<?xml version="1.0"?><a/>', ' <?xml version="1.0"?><a/>', '\ufeff<?xml version="1.0"?><a/>',
  '<?xml version="1.1"?><a>\u0085\u2028</a>',
  '<?xml version="1.1"?><a xmlns:p="u"><b xmlns:p=""/></a>', '<?xml version="1.1"?><a>&#1;</a>',
  '<?xml version="2.0"?><a/>', '<?xml?><a/>', '<?xml ?><a/>', '<?xml version="1.0" ?><a/>',
  '<?xml version = "1.0" encoding = "UTF-8" standalone = "yes" ?><a/>',
  '<?xml version="1.0"encoding="UTF-8"?><a/>', '<?xml encoding="UTF-8"?><a/>',
  '<?xml version="1.0" standalone="maybe"?><a/>', '<?xml version="1.0" encoding="1UTF"?><a/>',
  '<?xml version="1.0" standalone="yes" encoding="UTF-8"?><a/>', "<?xml version='1.0'?><a/>",
  '<?xml version="1.0?><a/>', '<?xml version=1.0?><a/>', '<?xml version="1.0"?',
  '<?xml version="1.0"?x<a/>', '<?XML version="1.0"?><a/>', '<a/><?xml version="1.0"?>',
  '<a><?xml version="1.0"?></a>', '<?xml\tversion="1.0"\r\n?><a/>', '<?xml vers="1.0"?><a/>',
  '<?xml version="1.0" foo="x"?><a/>', '<?xml =?><a/>', '<?xml version?><a/>',
  '<?xml version ?><a/>', '<?xml version x?><a/>', '<?xml version="1.0" encoding="UTF-8"',
  // Processing instructions.
  '<a><?pi?></a>', '<a><?pi?x?></a>', '<a><?pi ?x?></a>', '<a><??></a>', '<a><? pi?></a>',
  '<a><?p:i?></a>', '<a><?pi', '<a><?pi x', '<a><?pi x?', '<a><?1pi?></a>', '<a><?pi"x"?></a>',
  '<a><?pi\u0001?></a>', '<a><?Xml?></a>', '<a><?xml-stylesheet href="x"?></a>', '<a><?pi ??></a>',
  // Comments and CDATA sections.
  '<a><!----></a>', '<a><!-- - --></a>', '<a><!-- -- --></a>', '<a><!-- --->', '<a><!---></a>',
  '<a><!-', '<a><!-x-></a>', '<a><!x></a>', '<a><!></a>', '<a><!DOCTYPE a></a>',
  '<!DOCTYPE a><a/>', '<a><![CDATA[]]></a>', '<a><![CDATA[x]]]></a>', '<a><![CDATA[x]]]]></a>',
  '<![CDATA[x]]><a/>', '<a/><![CDATA[x]]>', '<a><![CDATA[\r\n\r]]></a>', '<a><![cdata[x]]></a>',
  '<a><![CDATA[x', '<a><![CDAT', '<a><!\r\n1234567</a>', '<a><!\ud83d\ude00xxxxx</a>',
  '<a><![CDATA[\u0001]]></a>', '<a><!--\ufffe--></a>',
  // Character data, references, line ends.
  '<a>]]></a>', '<a>]]]></a>', '<a>] ]></a>', '<a>]]&gt;</a>', '<a>]&#93;></a>', '<a>]]\r></a>',
  '<a>></a>', '<a>x\r\ny\rz\n</a>', '<a>&amp;&lt;&gt;&apos;&quot;</a>',
  '<a>&#65;&#x41;&#x10FFFF;&#x10000;</a>', '<a>&#0;</a>', '<a>&#x0;</a>', '<a>&#xD800;</a>',
  '<a>&#xFFFE;</a>', '<a>&#xFFFF;</a>', '<a>&#x110000;</a>', '<a>&#99999999999999999999;</a>',
  '<a>&#X41;</a>', '<a>&#x;</a>', '<a>&#;</a>', '<a>&;</a>', '<a>&amp</a>', '<a>&amp </a>;',
  '<a>&foo;</a>', '<a>&a:b;</a>', '<a>&1;</a>', '<a>&__proto__;</a>', '<a>&#9;&#10;&#13;</a>',
  '<a>&#x9;&#x20;&#x1F;</a>', '<a>x&amp;y<!--c-->z&lt;<![CDATA[w]]>v<?p?>u</a>', '<a>&</a>',
  '<a>&#</a>', '<a>&#x41</a>', '<a>\u0000</a>', '<a>\u0001</a>', '<a>\u001f</a>',
  '<a>\u007f\u0080\u009f\u0085\u2028</a>', '<a>\ud800</a>', '<a>\udc00</a>', '<a>\ud800x</a>',
  '<a>x\ud800</a>', '<a>\ud800<b/></a>', '<a>\ud83d\ude00</a>', '<a>\ufffe</a>', '<a>\uffff</a>',
  '<a>\ufffd</a>', '<a>\ufeff</a>', '<a>\ud800', '<a x="\ud800"/>', '<a\ud800/>',
  `<a>${long('x', 300)}&amp;${long('y', 300)}</a>`, `<a>${long('x', 20)}]]></a>`,
  `<a>${long('x', 30)}\u0001</a>`, `<a>${long('x', 30)}\ud800</a>`,
  `<a>${long('x', 30)}\ufffe</a>`, `<a>${long('x', 30)}\r\n${long('y', 30)}</a>`,
  `<a>${long('é', 40)}${long('\ud83d\ude00', 20)}</a>`,
  `<a>${long('x', 40)}]]>${long('y', 40)}</a>`, `<a>${long('x', 40)}\t\n${long('y', 40)}</a>`,
  // Tags and attributes.
  '<a x="1"/>', '<a x="1" y=\'2\'/>', '<a x="1"y="2"/>', '<a x="1" x="2"/>', '<a x/>', '<a x=/>',
  '<a x=1/>', '<a x = "1" />', '<a x="<"/>', '<a x=">"/>', '<a x="&lt;"/>', '<a x="\t\n\r\n\r"/>',
  '<a x="&#9;&#10;&#13;"/>', '<a x="]]>"/>', '<a x="1"', '<a x="1', '<a x', '<a x=',
  '<a x="a&b"/>;', '<a x="&amp"/>', '<a 1x="1"/>', '<a x:="1"/>', '<a :x="1"/>', '<a x:y:z="1"/>',
  '<a/ >', '<a / >', '<a /\n>', '<a\n/>', '<a\u0001/>', '<a\tb="1"/>', '<a b="1"\t/>',
  '<a b="1"c/>', '<a b="1""/>', '<a b="\'"/>', `<a b='"'/>`, `<a x="${long('v', 40)}\u0001"/>`,
  `<a ${Array.from({ length: 12 }, (_, i) => `a${i}="${i}"`).join(' ')} a3="x"/>`,
  // Namespaces.
  '<a xmlns:p="u"><p:b/></a>', '<p:a/>', '<a p:x="1"/>', '<a xmlns:p="u" p:x="1" p:x="2"/>',
  '<a xmlns:p="u" xmlns:q="u" p:x="1" q:x="2"/>', '<a xmlns:p="u" xmlns:q="v" p:x="1" q:x="2"/>',
  '<a xmlns:p=""/>', '<a xmlns=""/>', '<a xmlns="u"><b xmlns=""/></a>',
  '<a xmlns:xml="http://www.w3.org/XML/1998/namespace"/>', '<a xmlns:xml="u"/>',
  '<a xmlns:p="http://www.w3.org/XML/1998/namespace"/>',
  '<a xmlns="http://www.w3.org/XML/1998/namespace"/>',
  '<a xmlns:xmlns="http://www.w3.org/2000/xmlns/"/>', '<a xmlns:xmlns="u"/>',
  '<a xmlns:p="http://www.w3.org/2000/xmlns/"/>', '<a xmlns="http://www.w3.org/2000/xmlns/"/>',
  '<xmlns:a/>', '<xml:a/>', '<a xml:lang="en"/>', '<a xmlns:="u"/>', '<a:/>', '<:a/>',
  '<a:b:c xmlns:a="u"/>', '<a xmlns:p="u" xmlns:p="v"/>', '<a xmlns="u" xmlns="v"/>',
  '<a xmlns:p=" u "/>', '<a xmlns:p=" "/>', '<a xmlns="&#32;u"/>', '<a xmlns:p="u&#10;"/>',
  '<a xmlns:__proto__="u"><__proto__:b/></a>',
  '<a xmlns:p="u"><b xmlns:p="v"><p:c/></b><p:d/></a>', '<a xmlns:p="u"></p:a>',
  '<p:a xmlns:p="u"></p:a>', '<p:a xmlns:p="u"></q:a>', '<a x="1" xmlns="u" y="2"/>',
  '<a xmlns:p="u" p:x="1" x="2"/>', '<p:a p:x="1" xmlns:p="u"/>',
  '<a xmlns="u" xmlns:p="v"><b><c xmlns="w"/></b><p:d xmlns:q="x"/></a>',
  '<xml:a xmlns:xml="http://www.w3.org/XML/1998/namespace"/>',
  '<a xmlns:p="u"><p:b xmlns:p="v" p:x="1"/></a>',
  // End tags and names.
  '<a></a >', '<a></a\n>', '<a></ a>', '<a></>', '</>', '<a></a x>', '<a></a/>', '<a></ab>',
  '<ab></a>', '<a><b></a></b>', '<a></a></a>', '<é/>', '<\u0300/>', '<a\u0300/>', '<\u00b7/>',
  '<a\u00b7/>', '<\ud800\udc00/>', '<a\ud800\udc00/>', '<\udb80\udc00/>', '<a\udb80\udc00/>',
  '<\u037e/>', '<a\u037e/>', '<\u2070/>', '<\u3000/>', '<1/>', '<-a/>', '<.a/>', '<a-.9/>',
  '< a/>', '<\n', '<<a/>', '<a><</a>', '<a>< b/></a>', '<a\u200c\u200d/>', '<\u200c/>',
  '<a\u203f\u2040/>', '<\u203f/>', '<\ufdd0/>', '<\ufdf0/>', '<\uf900/>', '<\u2fef/>', '<\u2ff0/>',
  // Line ends and positions.
  '<r>\r\n  <a>1</a>\r\n  <b x="y"\r\n     z="w"/>\r\n  <c>\u0001</c></r>', '<r>\n<a>\n<b>\n</a>',
  '<r>\n\n\n   <a>\r\r\r  </b>', '<r>\r\n\u0001</r>', '<r>\r</r\u0001>', 'x\r', '/\r', '<a/>x\r',
  '<a/>x\r\r', '<a/>x\r\n', 'x\ud800', '<a/>x\ud800', '<a/>\ud800', '<a/> \r', '<a>\r',
  '<a>x\ud800',
];
