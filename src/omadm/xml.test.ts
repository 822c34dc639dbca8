/** The shared XML layer: the hostile-input guard, namespace resolution, and the writer. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  attribute,
  child,
  el,
  guardXml,
  innerXml,
  isNil,
  quote,
  readXml,
  resolveQName,
  serializeXml,
  writeXml,
  XSI_NS,
  type XmlGuardFailure,
} from './xml.ts';

class Refused extends Error {
  readonly kind: XmlGuardFailure | 'malformed';
  constructor(kind: XmlGuardFailure | 'malformed', message: string) {
    super(message);
    this.kind = kind;
  }
}

const LIMITS = { maxBytes: 4096, maxDepth: 8 };
const guard = (xml: string | Uint8Array) =>
  guardXml(xml, LIMITS, (kind, message) => new Refused(kind, message));
const read = (xml: string) => readXml(guard(xml), (message) => new Refused('malformed', message));

function refuses(xml: string, kind: Refused['kind']): void {
  assert.throws(
    () => read(xml),
    (e) => e instanceof Refused && e.kind === kind,
  );
}

describe('XML guard', () => {
  it('decodes bytes as UTF-8 and passes ordinary documents through', () => {
    assert.equal(guard(new TextEncoder().encode('<a>é</a>')), '<a>é</a>');
  });

  it('refuses DOCTYPE and ENTITY declarations, oversize and overdeep input', () => {
    refuses('<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>', 'doctype');
    refuses('<!doctype a><a/>', 'doctype');
    refuses(`<a>${'x'.repeat(LIMITS.maxBytes)}</a>`, 'limit');
    refuses(`${'<a>'.repeat(9)}${'</a>'.repeat(9)}`, 'limit');
    // self-closing and sibling elements do not add depth
    assert.doesNotThrow(() => read(`${'<a>'.repeat(8)}<b/><b/>${'</a>'.repeat(8)}`));
  });

  it('refuses more elements than maxElements, however flat (found by fuzzing)', () => {
    // 58,000 empty elements in a megabyte held the parser for a second; the scan counts them.
    const few = { ...LIMITS, maxElements: 10 };
    const guardFew = (xml: string) => guardXml(xml, few, (k, m) => new Refused(k, m));
    assert.doesNotThrow(() => guardFew(`<a>${'<b/>'.repeat(9)}</a>`));
    assert.throws(
      () => guardFew(`<a>${'<b/>'.repeat(10)}</a>`),
      (e) => e instanceof Refused && e.kind === 'limit' && /more than 10 elements/.test(e.message),
    );
    // Comments, CDATA and end tags are not elements.
    assert.doesNotThrow(() => guardFew(`<a>${'<!--<b/>--><![CDATA[<b/>]]>'.repeat(20)}</a>`));
  });

  it('counts depth past a ">" inside an attribute value and after stray end tags', () => {
    // `/>` inside quotes made a start tag look self-closing; end tags first drove depth negative.
    refuses(`${'<a x="/>">'.repeat(9)}${'</a>'.repeat(9)}`, 'limit');
    refuses(`${'</a>'.repeat(9)}${'<a>'.repeat(9)}${'</a>'.repeat(9)}`, 'limit');
    assert.doesNotThrow(() => read(`<a x='>' y="a>b"><b c="/>"></b></a>`));
  });

  it('scans in linear time: unterminated comments, CDATA and tags (fuzzing regression)', () => {
    // The depth scan looked for the end of each `<!--` from its start: quadratic, so 1 MiB of
    // them held the thread for minutes (testdata/fuzz/mde2-server--comment-openers-256k).
    const big = { maxBytes: 1 << 20, maxDepth: 32 };
    const started = performance.now();
    for (const opener of ['<!--', '<![CDATA[', '<?x', '<a/', '<a x="', '</a'])
      guardXml(opener.repeat((1 << 20) / opener.length), big, (k, m) => new Refused(k, m));
    assert.ok(performance.now() - started < 1000, 'a megabyte of each is scanned promptly');
  });
});

describe('XML reader', () => {
  it('resolves element and attribute names against the declarations in scope', () => {
    const root = read(
      '<s:E xmlns:s="urn:s" xmlns="urn:d"><s:H a="1" s:b="2"/><x xmlns="">t</x><y/></s:E>',
    );
    assert.deepEqual([root.ns, root.name], ['urn:s', 'E']);
    const h = child(root, 'urn:s', 'H')!;
    assert.equal(attribute(h, 'a'), '1');
    assert.equal(attribute(h, 'b', 'urn:s'), '2');
    assert.equal(attribute(h, 'b'), undefined);
    assert.equal(child(root, '', 'x')?.text, 't');
    assert.ok(child(root, 'urn:d', 'y'));
  });

  it('matches by namespace, not by prefix', () => {
    const a = read('<p:r xmlns:p="urn:x"><p:c/></p:r>');
    const b = read('<q:r xmlns:q="urn:x"><c xmlns="urn:x"/></q:r>');
    assert.ok(child(a, 'urn:x', 'c'));
    assert.ok(child(b, 'urn:x', 'c'));
  });

  it('keeps character data as written and decodes entities and character references', () => {
    const r = read('<r> a &amp;amp; &#x41;&#66; <![CDATA[<c>]]></r>');
    assert.equal(r.text, ' a &amp; AB <c>');
  });

  it('reads xsi:nil and resolves QName content in its scope', () => {
    const r = read(`<r xmlns:i="${XSI_NS}" xmlns:s="urn:s"><v i:nil="true"/><q>s:Sender</q></r>`);
    assert.equal(isNil(child(r, '', 'v')!), true);
    assert.deepEqual(resolveQName(child(r, '', 'q')!, ' s:Sender '), {
      ns: 'urn:s',
      name: 'Sender',
    });
    assert.equal(resolveQName(r, 'zz:Sender'), undefined);
  });

  it('writes an element’s content back as XML: names, declarations and attributes as written', () => {
    const r = read(
      '<r xmlns="urn:outer"><p:a xmlns:p="urn:p" p:k="&lt;1&gt;" j="2">x &amp; y<b/><![CDATA[<c>]]></p:a> t</r>',
    );
    const xml = innerXml(r);
    assert.equal(
      xml,
      '<p:a xmlns:p="urn:p" p:k="&lt;1&gt;" j="2">x &amp; y<b/><![CDATA[<c>]]></p:a> t',
    );
    // Read back, the fragment is the same elements (the default namespace of `r` is not in it).
    const again = read(`<w>${xml}</w>`);
    const a = child(again, 'urn:p', 'a')!;
    assert.equal(attribute(a, 'k', 'urn:p'), '<1>');
    assert.equal(a.text, 'x & y<c>');
    assert.ok(child(a, '', 'b'));
  });

  it('refuses XML that is not well-formed, several roots and unbound prefixes', () => {
    refuses('<a><b></a></b>', 'malformed');
    refuses('<a x="1" x="2"/>', 'malformed');
    refuses('<a>&undefined;</a>', 'malformed');
    refuses('<a/>text', 'malformed');
    refuses('<a>\u0001</a>', 'malformed');
    refuses('<a/><b/>', 'malformed');
    refuses('<x:a/>', 'malformed');
    refuses('<a x:y="1"/>', 'malformed');
    refuses('', 'malformed');
  });
});

describe('XML writer', () => {
  it('escapes text and attributes and reads back what it wrote', () => {
    const xml = writeXml(
      [el('r', [el('v', 'a<b & "c"', { k: `x"y<z&`, skipped: undefined }), el('e')])],
      true,
    );
    assert.ok(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?><r>'));
    assert.ok(!xml.includes('skipped'));
    const r = read(xml);
    const v = child(r, '', 'v')!;
    assert.equal(v.text, 'a<b & "c"');
    assert.equal(attribute(v, 'k'), 'x"y<z&');
    assert.deepEqual(child(r, '', 'e')?.children, []);
  });

  it('writes the exact text: five entities, empty elements, CDATA split at "]]>", PIs', () => {
    assert.equal(
      serializeXml([
        { '?pi': [], ':@': { '@_v': "1'" } },
        el('a', [el('b', `<&>'"`), el('c', ''), { d: [{ '#cdata': [{ '#text': 'x]]>y' }] }] }]),
      ]),
      `<?pi v="1&apos;"?><a><b>&lt;&amp;&gt;&apos;&quot;</b><c/><d><![CDATA[x]]]]><![CDATA[>y]]></d></a>`,
    );
    const r = read(serializeXml([el('r', [{ d: [{ '#cdata': [{ '#text': 'x]]>y' }] }] }])]));
    assert.equal(child(r, '', 'd')?.text, 'x]]>y');
  });
});

describe('quote', () => {
  it('escapes control characters and cuts long input for error messages', () => {
    assert.equal(quote('a\nb"c'), '"a\\nb\\"c"');
    assert.equal(quote('x'.repeat(500)), `"${'x'.repeat(200)}…"`);
  });
});
