/**
 * The XML reader (xml-read.ts) against saxes, the reader it replaced (xml-testing.ts keeps it):
 * every XML document of the repository and every hand-written edge case reads the same, the
 * same tree or a refusal at the same line and column; where saxes departs from the
 * specifications, ours follows them, case by case below. Mutations of these documents are
 * compared in src/fuzz/xml-differential.test.ts and by the `xml` fuzz target.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SaxesParser } from 'saxes';
import { readXml } from './xml-read.ts';
import {
  canonicalXml,
  compareReaders,
  readXmlWithSaxes,
  repositoryXml,
  XML_CASES,
  XmlRefusal,
  type SaxesDeviation,
} from './xml-testing.ts';
import { LIMITS } from './syncml.ts';
import { attribute, child, guardXml, innerXml, type XmlElement } from './xml.ts';

const refuse = (message: string) => new XmlRefusal(message);

/** The text of a document as saxes alone reads it (XML 1.1 when it says so). */
function saxesText(xml: string): string {
  let text = '';
  const parser = new SaxesParser({ xmlns: true });
  parser.on('text', (t) => (text += t));
  parser.write(xml).close();
  return text;
}
const read = (xml: string) => readXml(xml, refuse);

/** The message `read` refuses `xml` with. */
function refusal(xml: string): string {
  try {
    read(xml);
  } catch (e) {
    assert.ok(e instanceof XmlRefusal, `thrown through fail: ${String(e)}`);
    return e.message;
  }
  assert.fail(`accepted ${JSON.stringify(xml)}`);
}

describe('XML reader against saxes', () => {
  it('reads every XML document of the repository as saxes did', () => {
    const documents = repositoryXml();
    assert.ok(documents.length >= 50, `${documents.length} documents`);
    for (const { path, xml } of documents) {
      const c = compareReaders(xml);
      assert.equal(c.disagreement, undefined, path);
      // Fuzz regressions may be where saxes is wrong; a test vector is not.
      if (!path.includes('testdata/fuzz/')) assert.equal(c.deviation, undefined, path);
    }
  });

  it('reads the hand-written edge cases as saxes did, but where saxes is wrong', () => {
    const deviations = new Map<SaxesDeviation, string[]>();
    for (const xml of XML_CASES) {
      const c = compareReaders(xml);
      assert.equal(c.disagreement, undefined, JSON.stringify(xml));
      if (c.deviation) deviations.set(c.deviation, [...(deviations.get(c.deviation) ?? []), xml]);
    }
    // Every case where the readers may differ, each one below.
    assert.deepEqual(Object.fromEntries(deviations), {
      doctype: ['<a><!DOCTYPE a></a>', '<!DOCTYPE a><a/>'],
      'pi-target-question': ['<a><?pi?x?></a>'],
      'unpaired-surrogate': [
        '<a>\ud800</a>',
        '<a>\udc00</a>',
        '<a>\ud800x</a>',
        '<a>x\ud800</a>',
        '<a>\ud800<b/></a>',
        '<a>\ud800',
        '<a x="\ud800"/>',
        '<a\ud800/>',
        `<a>${'x'.repeat(30)}\ud800</a>`,
        '<a/>\ud800',
        '<a>x\ud800',
      ],
      'trimmed-namespace': [
        '<a xmlns:p=" u "/>',
        '<a xmlns:p=" "/>',
        '<a xmlns="&#32;u"/>',
        '<a xmlns:p="u&#10;"/>',
      ],
    });
  });

  describe('follows the specifications where saxes does not', () => {
    it('an unpaired surrogate is not a character (XML 1.0 §2.2)', () => {
      // saxes decodes a high surrogate with whatever follows: here it swallows the "x".
      assert.equal(readXmlWithSaxes('<a>\ud800x</a>', refuse).text, '\ud800x');
      assert.match(
        refusal('<a>\ud800x</a>'),
        /^not well-formed XML: 1:4: unpaired surrogate U\+D800/,
      );
      assert.match(
        refusal('<a>\udc00</a>'),
        /^not well-formed XML: 1:4: unpaired surrogate U\+DC00/,
      );
      assert.match(refusal('<a x="\ud800"/>'), /1:7: unpaired surrogate/);
      assert.equal(read('<a>\ud83d\ude00</a>').text, '\ud83d\ude00');
    });

    it('a namespace name is the attribute value as written, not trimmed (Namespaces §2.2, §2.3)', () => {
      const xml = '<a xmlns:p=" urn:x "><p:b/></a>';
      assert.equal(readXmlWithSaxes(xml, refuse).children[0]!.ns, 'urn:x');
      const ours = read(xml);
      assert.equal(ours.children[0]!.ns, ' urn:x ');
      assert.deepEqual({ ...ours.namespaces }, { p: ' urn:x ' });
      // White space is a namespace name too (a useless one), not an undeclaration.
      assert.throws(() => readXmlWithSaxes('<a xmlns:p=" "/>', refuse), /undefine prefix/);
      assert.equal(read('<a xmlns:p=" "/>').namespaces.p, ' ');
    });

    it("a processing instruction's target is followed by white space or ?> (§2.6)", () => {
      assert.ok(readXmlWithSaxes('<a><?pi?x?></a>', refuse));
      assert.match(refusal('<a><?pi?x?></a>'), /^not well-formed XML: 1:9: "x" after "<\?pi\?"/);
      assert.ok(read('<a><?pi ?x?></a>'));
    });

    it('a document of another 1.x version is read as XML 1.0 (§2.8)', () => {
      // saxes alone reads it as XML 1.1: NEL ends a line, C1 controls must be references, a
      // prefix may be undeclared. The reference in xml-testing.ts runs it with forceXMLVersion.
      const nel = '<?xml version="1.1"?><a>\u0085</a>';
      assert.equal(saxesText(nel), '\n');
      assert.equal(read(nel).text, '\u0085');
      assert.match(refusal('<?xml version="1.1"?><a xmlns:p="u"><b xmlns:p=""/></a>'), /1:49:/);
    });

    it('a DOCTYPE is refused, not skipped (no DTD is read; guardXml refuses it first)', () => {
      assert.ok(readXmlWithSaxes('<!DOCTYPE a><a/>', refuse));
      assert.match(refusal('<!DOCTYPE a><a/>'), /^not well-formed XML: 1:9: a document type/);
    });
  });
});

describe('XML reader', () => {
  it('splits character data where saxes did: at markup, never at references', () => {
    const r = read('<r>a&amp;b&#x43;\r\nd<!--c-->e<?p x?>f<![CDATA[g\r\n]]><![CDATA[]]>h<x/>i</r>');
    assert.deepEqual(
      r.content.map((c) => ('cdata' in c ? [c.text, c.cdata] : c.qname)),
      [
        ['a&bC\nd', false],
        ['e', false],
        ['f', false],
        ['g\n', true],
        ['', true],
        ['h', false],
        'x',
        ['i', false],
      ],
    );
    assert.equal(r.text, 'a&bC\ndefg\nhi');
    assert.equal(innerXml(r), 'a&amp;bC\ndef<![CDATA[g\n]]><![CDATA[]]>h<x/>i');
  });

  it('normalizes attribute values as CDATA (§3.3.3): white space characters, not references', () => {
    const r = read('<r a="x\ty\nz\r\nw\rv" b="&#9;&#10;&#13;&#32;&lt;&quot;"/>');
    assert.equal(attribute(r, 'a'), 'x y z w v');
    assert.equal(attribute(r, 'b'), '\t\n\r <"');
  });

  it("shares the parent's scope map unless the element declares a prefix", () => {
    const r = read('<r xmlns="urn:r"><a><b xmlns:p="urn:p"><c/></b></a><d xmlns=""/></r>');
    const a = child(r, 'urn:r', 'a')!;
    const b = child(a, 'urn:r', 'b')!;
    const c = child(b, 'urn:r', 'c')!;
    const d = child(r, '', 'd')!;
    assert.equal(a.scope, r.scope);
    assert.equal(c.scope, b.scope);
    assert.notEqual(b.scope, a.scope);
    assert.deepEqual(
      [...b.scope],
      [
        ['', 'urn:r'],
        ['xml', 'http://www.w3.org/XML/1998/namespace'],
        ['xmlns', 'http://www.w3.org/2000/xmlns/'],
        ['p', 'urn:p'],
      ],
    );
    assert.equal(d.scope.get(''), '');
    assert.equal(read('<r/>').scope.get('xml'), 'http://www.w3.org/XML/1998/namespace');
  });

  it('keeps namespace declarations in a record without prototype (a prefix may be __proto__)', () => {
    const r = read('<r xmlns:__proto__="urn:x" xmlns="urn:d"><__proto__:a/></r>');
    assert.deepEqual(Object.entries(r.namespaces), [
      ['__proto__', 'urn:x'],
      ['', 'urn:d'],
    ]);
    assert.equal(r.children[0]!.ns, 'urn:x');
  });

  it('reports text outside the root where saxes did, before a final CR (fuzzing regression)', () => {
    // saxes holds back a CR that ends its input (a LF may follow in its next chunk), and a
    // high surrogate, and reports the text where its input ended
    // (testdata/fuzz/xml--text-then-final-cr.xml).
    assert.equal(refusal('/\r'), 'not well-formed XML: 1:1: text before the root element');
    assert.equal(refusal('<a/>x\r\r'), 'not well-formed XML: 2:0: text after the root element');
    assert.equal(refusal('<a/>x\ud800'), 'not well-formed XML: 1:5: text after the root element');
    assert.equal(refusal('<a/>x\n'), 'not well-formed XML: 2:0: text after the root element');
  });

  it('refuses through fail, with the line and column saxes gave', () => {
    assert.equal(
      refusal('<r>\r\n  <a x="1"\r\n     x="2"/>\r\n</r>'),
      'not well-formed XML: 3:12: duplicate attribute x (§3.1, Namespaces §6.3)',
    );
    assert.equal(
      refusal('<r>\n<p:a/></r>'),
      'not well-formed XML: 2:6: unbound namespace prefix "p"',
    );
    assert.equal(
      refusal('<r>&nbsp;</r>'),
      'not well-formed XML: 1:9: undefined entity &nbsp; (no DTD, only the five predefined)',
    );
    assert.equal(refusal('<r>'), 'not well-formed XML: 1:3: element <r> is not closed');
    assert.equal(
      refusal('<r/>\u0000'),
      'not well-formed XML: 1:5: character U+0000 is not allowed in XML (§2.2)',
    );
  });

  it('reads a SyncML message binding 20,000 prefixes over 20,000 binding elements promptly', () => {
    // 650 KB, within SyncML's limits: the reader before copied the root's 20,000 bindings into a
    // scope map at each element binding one more, and ran out of a 4 GB heap.
    const xml = `<SyncML xmlns="SYNCML:SYNCML1.2" ${Array.from({ length: 20_000 }, (_, i) => `xmlns:p${i}="u"`).join(' ')}>${'<c xmlns:q="v"/>'.repeat(20_000)}</SyncML>`;
    const started = performance.now();
    const root = read(guardXml(xml, LIMITS, (_, message) => new Error(message)));
    assert.ok(performance.now() - started < 1000, 'within a second');
    assert.equal(root.children.length, 20_000);
    assert.equal(root.children[7]!.scope.get('p19999'), 'u');
  });

  it('reads hostile input in time linear in its size, without recursion', () => {
    const mib = 1 << 20;
    const cases: [string, string, boolean][] = [
      ['deep nesting', `${'<a>'.repeat(mib / 8)}${'</a>'.repeat(mib / 8)}`, true],
      ['deep nesting, unclosed', '<a>'.repeat(mib / 3), false],
      [
        'many attributes',
        `<a ${Array.from({ length: 50_000 }, (_, i) => `a${i}=""`).join(' ')}/>`,
        true,
      ],
      [
        'many attributes, one twice',
        `<a ${Array.from({ length: 50_000 }, (_, i) => `a${i}=""`).join(' ')} a7=""/>`,
        false,
      ],
      [
        'many prefixes, each child declaring one more',
        `<r ${Array.from({ length: 20_000 }, (_, i) => `xmlns:p${i}="u"`).join(' ')}>${'<c xmlns:q="v"/>'.repeat(20_000)}</r>`,
        true,
      ],
      ['an unterminated reference', `<a>&${'x'.repeat(mib)}`, false],
      ['references', `<a>${'&amp;'.repeat(mib / 5)}</a>`, true],
      ['brackets', `<a>${']'.repeat(mib)}></a>`, false],
      ['comments', `<a>${'<!--x-->'.repeat(mib / 8)}</a>`, true],
      ['unterminated comments', `<a>${'<!--'.repeat(mib / 4)}`, false],
      ['processing instructions', `<a>${'<?p?>'.repeat(mib / 5)}</a>`, true],
      ['CDATA sections', `<a>${'<![CDATA[x]]>'.repeat(mib / 13)}</a>`, true],
      ['text', `<a>${'x'.repeat(mib)}</a>`, true],
      ['an attribute value', `<a b="${'x'.repeat(mib)}"/>`, true],
      ['lone brackets outside the root', `<a/>${' '.repeat(mib)}x`, false],
    ];
    for (const [what, xml, accepted] of cases) {
      const started = performance.now();
      if (accepted) read(xml);
      else refusal(xml);
      const ms = performance.now() - started;
      assert.ok(ms < 1000, `${what}: ${ms.toFixed(0)} ms`);
    }
    // Nor does anything else recurse: the canonical form, the scope of the innermost element.
    canonicalXml(read(`${'<a>'.repeat(100_000)}${'</a>'.repeat(100_000)}`));
    let e: XmlElement = read(`${'<a xmlns:p="u">'.repeat(100_000)}${'</a>'.repeat(100_000)}`);
    while (e.children.length) e = e.children[0]!;
    assert.equal(e.scope.get('p'), 'u');
  });
});
