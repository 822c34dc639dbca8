/**
 * Bar charts as server-drawn SVG, for the two things a chart shows better than a table:
 * issuance over time and expiries ahead. Accessible (WAI-ARIA graphics, W3C SVG accessibility
 * notes): `role="img"` named by a `<title>` and described by a `<desc>` that states the
 * totals, each bar with its own `<title>` (a tooltip), and the numbers as a table under a
 * `<details>` disclosure for anyone who cannot see the chart. No inline style (the CSP forbids
 * it): the stylesheet colours the classes.
 */
import { html, type SafeHtml } from './html.ts';

export interface Bar {
  /** Axis label, and the bar's tooltip with its value. */
  readonly label: string;
  readonly value: number;
}

export interface BarChartOptions {
  /** Unique on the page: the ids of the title and description derive from it. */
  readonly id: string;
  readonly title: string;
  /** One sentence with the totals: the chart's text alternative. */
  readonly summary: string;
  readonly bars: readonly Bar[];
  /** Label every n-th bar on the x axis (default: about 6 labels). */
  readonly labelEvery?: number;
  /** Bars in the warning colour (expiries). */
  readonly warn?: boolean;
  /** Headers of the data table's columns: what a label is, what a value is. */
  readonly labelName: string;
  readonly valueName: string;
}

const W = 640;
const H = 220;
const LEFT = 40;
const RIGHT = 8;
const TOP = 10;
const BOTTOM = 30;

/** The smallest of 1, 2, 5 × 10^k at or above `n` (at least 1): a readable axis maximum. */
export function niceMax(n: number): number {
  if (n <= 1) return 1;
  const k = 10 ** Math.floor(Math.log10(n));
  return [1, 2, 5, 10].map((m) => m * k).find((v) => v >= n)!;
}

const fmt = (n: number) => Number(n.toFixed(1)).toString();

export function barChart(o: BarChartOptions): SafeHtml {
  const n = o.bars.length;
  const max = niceMax(Math.max(0, ...o.bars.map((b) => b.value)));
  const plotW = W - LEFT - RIGHT;
  const plotH = H - TOP - BOTTOM;
  const slot = plotW / Math.max(n, 1);
  const barW = Math.max(1, slot * 0.72);
  const every = o.labelEvery ?? Math.max(1, Math.ceil(n / 6));
  const y = (v: number) => TOP + plotH - (v / max) * plotH;
  const ticks = [0, max / 2, max];
  const svg = html`<svg role="img" aria-labelledby="${o.id}-title ${o.id}-desc" viewBox="0 0 ${W} ${H}" xmlns="http://www.w3.org/2000/svg">
<title id="${o.id}-title">${o.title}</title>
<desc id="${o.id}-desc">${o.summary}</desc>
${ticks.map(
  (
    t,
  ) => html`<line class="axis" x1="${LEFT}" x2="${W - RIGHT}" y1="${fmt(y(t))}" y2="${fmt(y(t))}" stroke-dasharray="${t === 0 ? '' : '2 3'}"/>
<text x="${LEFT - 6}" y="${fmt(y(t) + 4)}" text-anchor="end">${Number.isInteger(t) ? t : fmt(t)}</text>`,
)}
${o.bars.map((b, i) => {
  const x = LEFT + i * slot + (slot - barW) / 2;
  return html`<rect class="bar${o.warn ? ' warn' : ''}" x="${fmt(x)}" y="${fmt(y(b.value))}" width="${fmt(barW)}" height="${fmt(TOP + plotH - y(b.value))}"><title>${b.label}: ${b.value}</title></rect>
${i % every === 0 ? html`<text x="${fmt(x + barW / 2)}" y="${H - BOTTOM + 16}" text-anchor="middle">${b.label}</text>` : ''}`;
})}
</svg>`;
  return html`<figure class="chart card">${svg}
<figcaption>${o.summary}</figcaption>
<details><summary>Show the numbers</summary>
<div class="table-wrap"><table><thead><tr><th scope="col">${o.labelName}</th><th scope="col">${o.valueName}</th></tr></thead>
<tbody>${o.bars.map((b) => html`<tr><td>${b.label}</td><td>${b.value}</td></tr>`)}</tbody></table></div>
</details></figure>`;
}
