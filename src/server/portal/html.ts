/**
 * HTML by tagged template, escaping every interpolation: the portal's only way to make markup.
 *
 * ```ts
 * html`<td>${certificate.subject}</td>`          // the subject is escaped
 * html`<ul>${items.map((i) => html`<li>${i}</li>`)}</ul>`  // fragments nest as they are
 * html`<div>${raw(svgFromALibrary)}</div>`       // trusted markup, said out loud
 * ```
 *
 * Escaped: `& < > " '` (OWASP XSS cheat sheet, rule #1 and #2), which makes a value safe in
 * element content and in quoted attribute values. It does not make a value safe inside a
 * `<script>` or `<style>` element, an unquoted attribute, an event handler attribute or a
 * URL's scheme: the portal writes none of those from data (the CSP forbids inline script and
 * style anyway), and URLs it builds from data use {@link urlPath}. `null`, `undefined` and
 * `false` render as nothing; arrays render their elements, each escaped unless a fragment.
 */

/** Markup that is already safe: the result of {@link html}, or {@link raw}. */
export class SafeHtml {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  toString(): string {
    return this.#value;
  }
}

const ENTITIES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Escapes text for element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

export type HtmlValue =
  SafeHtml | string | number | bigint | boolean | null | undefined | readonly HtmlValue[];

function render(v: HtmlValue): string {
  if (v instanceof SafeHtml) return v.toString();
  if (v === null || v === undefined || v === false) return '';
  if (Array.isArray(v)) return v.map(render).join('');
  return escapeHtml(String(v));
}

/** The template with every interpolation escaped (fragments and {@link raw} excepted). */
export function html(strings: TemplateStringsArray, ...values: readonly HtmlValue[]): SafeHtml {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + strings[i + 1]!;
  return new SafeHtml(out);
}

/** Trusted markup, inserted as it is: only for text the server made (an SVG it drew). */
export function raw(markup: string): SafeHtml {
  return new SafeHtml(markup);
}

/**
 * A path built from fixed segments and data: each data segment percent-encoded, so a value can
 * neither leave its segment nor start a `javascript:` URL.
 * @example urlPath('/admin/devices', device.id) // "/admin/devices/a%2Fb" for id "a/b"
 */
export function urlPath(base: string, ...segments: readonly string[]): string {
  return [base.replace(/\/+$/, ''), ...segments.map(encodeURIComponent)].join('/');
}

/** A query string from name/value pairs (values encoded), `?`-prefixed; empty values left out. */
export function query(params: Readonly<Record<string, string | number | undefined>>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}
