/** The html template against XSS payloads (OWASP XSS filter evasion cheat sheet samples). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { escapeHtml, html, query, raw, SafeHtml, urlPath } from './html.ts';

const PAYLOADS = [
  '<script>alert(1)</script>',
  '"><img src=x onerror=alert(1)>',
  "' onmouseover='alert(1)",
  '<svg/onload=alert(1)>',
  '</title><script>alert(1)</script>',
  '&lt;script&gt;',
  '<a href="javascript:alert(1)">x</a>',
  '<!--',
  '<![CDATA[<script>]]>',
];

describe('html template', () => {
  it('escapes every interpolation in content and in quoted attributes', () => {
    for (const p of PAYLOADS) {
      const out = html`<p title="${p}" data-x='${p}'>${p}</p>`.toString();
      // The attribute values stay inside their quotes, and the only tags are the template's.
      const m = /^<p title="([^"]*)" data-x='([^']*)'>([^<]*)<\/p>$/.exec(out);
      assert.ok(m, out);
      assert.deepEqual(m.slice(1), [escapeHtml(p), escapeHtml(p), escapeHtml(p)]);
      assert.doesNotMatch(escapeHtml(p), /[<>"']/);
    }
  });

  it('escapes & so that entities in data stay text', () => {
    assert.equal(html`${'&lt;b&gt; & more'}`.toString(), '&amp;lt;b&amp;gt; &amp; more');
  });

  it('nests fragments without escaping them twice, and escapes array elements', () => {
    const items = ['<a>', 'b&c'];
    const out = html`<ul>${items.map((i) => html`<li>${i}</li>`)}</ul>`.toString();
    assert.equal(out, '<ul><li>&lt;a&gt;</li><li>b&amp;c</li></ul>');
    assert.equal(html`${['<x>', html`<y>`]}`.toString(), '&lt;x&gt;<y>');
  });

  it('renders null, undefined and false as nothing; numbers, bigints and true as text', () => {
    assert.equal(html`[${null}${undefined}${false}]`.toString(), '[]');
    assert.equal(html`${1.5} ${10n} ${true}`.toString(), '1.5 10 true');
  });

  it('inserts raw() as it is, and only raw() or a fragment', () => {
    assert.equal(html`${raw('<svg></svg>')}`.toString(), '<svg></svg>');
    assert.ok(raw('x') instanceof SafeHtml);
    const lookalike = { toString: () => '<b>' };
    assert.equal(html`${String(lookalike)}`.toString(), '&lt;b&gt;', 'no duck typing');
  });

  it('urlPath encodes each data segment; query encodes values and drops empty ones', () => {
    assert.equal(urlPath('/admin/devices/', 'a/b', '../x'), '/admin/devices/a%2Fb/..%2Fx');
    assert.equal(urlPath('/x', 'javascript:alert(1)'), '/x/javascript%3Aalert(1)');
    assert.equal(
      query({ q: 'a&b=c <', page: 2, empty: '', none: undefined }),
      '?q=a%26b%3Dc+%3C&page=2',
    );
    assert.equal(query({}), '');
  });
});
