/**
 * The public page `/` and the CA downloads `/ca/<which>.<ext>`: the organisation's root, the
 * CAs between it and the issuing CA, the issuing CA, and during a rollover the next issuing CA,
 * each with subject, validity, serial, SHA-1 and SHA-256 thumbprints (to compare with what a
 * device shows before trusting it), and four downloads:
 *
 * | file   | Content-Type                       | what                                           |
 * |--------|------------------------------------|------------------------------------------------|
 * | `.cer` | `application/pkix-cert` (RFC 2585) | the certificate, DER: saved as a file          |
 * | `.crt` | `application/x-x509-ca-cert`       | the certificate, DER, `inline`: browsers and phones that install CAs (Firefox, Android, iOS) offer to install it |
 * | `.pem` | `application/x-pem-file`           | the certificate, PEM                           |
 * | `.p7b` | `application/x-pkcs7-certificates` | PKCS#7 certs-only: the certificate and its chain up to the root |
 *
 * `.cer`, `.pem` and `.p7b` are `attachment`s with a file name from the subject's CN (the links
 * carry no `download` attribute: the server's headers decide, as for any client). The page
 * also shows a QR code of its own URL (for phones), the SCEP URL and the CRL URL.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import QRCode from 'qrcode';
import { encodePem } from '../../pki/pem.ts';
import { encodePkcs7Certificates } from '../../pki/pkcs7.ts';
import {
  formatName,
  nameAttribute,
  sha1Thumbprint,
  sha256Thumbprint,
  type Certificate,
} from '../../pki/x509.ts';
import type { Portal, PortalDeps } from './context.ts';
import { html, raw } from './html.ts';
import { colons, when } from './layout.ts';

export interface CaEntry {
  /** The name in download paths: `root`, `intermediate-1`…, `issuing`, `next`. */
  readonly id: string;
  readonly role: string;
  readonly certificate: Certificate;
  /** The certificate and its issuers up to the root, for the `.p7b`. */
  readonly chain: readonly Certificate[];
}

/** The CA certificates the page offers, root first, each once. */
export function caEntries(deps: Pick<PortalDeps, 'ca' | 'nextCa'>): CaEntry[] {
  const { ca, nextCa } = deps;
  const root = ca.root.certificate;
  const entries: CaEntry[] = [{ id: 'root', role: 'Root CA', certificate: root, chain: [root] }];
  // intermediates: the issuing CA's issuer first, so the one nearest the root is last.
  ca.intermediates.forEach((c, i) =>
    entries.push({
      id: `intermediate-${i + 1}`,
      role: 'Intermediate CA',
      certificate: c,
      chain: [...ca.intermediates.slice(i), root],
    }),
  );
  entries.push({
    id: 'issuing',
    role: 'Issuing CA',
    certificate: ca.issuing.certificate,
    chain: [ca.issuing.certificate, ...ca.intermediates, root],
  });
  if (nextCa)
    entries.push({
      id: 'next',
      role: 'Next issuing CA (rollover)',
      certificate: nextCa.issuing.certificate,
      chain: [nextCa.issuing.certificate, ...nextCa.intermediates, nextCa.root.certificate],
    });
  const seen = new Set<string>();
  return entries.filter((e) => {
    const key = sha256Thumbprint(e.certificate);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

export const DOWNLOADS = {
  cer: { type: 'application/pkix-cert', disposition: 'attachment', label: '.cer (DER)' },
  crt: { type: 'application/x-x509-ca-cert', disposition: 'inline', label: 'Install (.crt)' },
  pem: { type: 'application/x-pem-file', disposition: 'attachment', label: '.pem' },
  p7b: {
    type: 'application/x-pkcs7-certificates',
    disposition: 'attachment',
    label: '.p7b (with chain)',
  },
} as const;
export type DownloadFormat = keyof typeof DOWNLOADS;

/** The bytes of one download. */
export function caFile(e: CaEntry, format: DownloadFormat): Buffer {
  switch (format) {
    case 'cer':
    case 'crt':
      return Buffer.from(e.certificate.der);
    case 'pem':
      return Buffer.from(encodePem('CERTIFICATE', e.certificate.der), 'ascii');
    case 'p7b':
      return Buffer.from(encodePkcs7Certificates(e.chain));
  }
}

/** A file name from the certificate's CN (`certpost-root-ca.cer`): ASCII, no quotes. */
export function fileName(cert: Certificate, format: DownloadFormat): string {
  const cn = nameAttribute(cert.subject, '2.5.4.3') ?? 'ca';
  const base =
    cn
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '') || 'ca';
  return `${base.slice(0, 80)}.${format}`;
}

const DAY = 86_400_000;

function validity(cert: Certificate, now: Date) {
  const left = Math.floor((cert.notAfter.getTime() - now.getTime()) / DAY);
  const state =
    now < cert.notBefore
      ? html`<span class="badge pending">not yet valid</span>`
      : left < 0
        ? html`<span class="badge expired">expired</span>`
        : html`<span class="badge ${left < 90 ? 'expiring' : 'valid'}">${left} days left</span>`;
  return html`${when(cert.notBefore)} to ${when(cert.notAfter)} ${state}`;
}

function caCard(e: CaEntry, now: Date) {
  const c = e.certificate;
  return html`<article class="card" id="${e.id}">
<h2>${e.role}</h2>
<dl class="facts">
<dt>Subject</dt><dd>${formatName(c.subject)}</dd>
${e.id === 'root' ? '' : html`<dt>Issuer</dt><dd>${formatName(c.issuer)}</dd>`}
<dt>Valid</dt><dd>${validity(c, now)}</dd>
<dt>Serial</dt><dd class="mono">${Buffer.from(c.serial).toString('hex')}</dd>
<dt>SHA-1</dt><dd class="mono">${colons(sha1Thumbprint(c))}</dd>
<dt>SHA-256</dt><dd class="mono">${colons(sha256Thumbprint(c))}</dd>
</dl>
<div class="downloads">${(Object.keys(DOWNLOADS) as DownloadFormat[]).map(
    (f) =>
      html`<a class="button${f === 'crt' ? '' : ' secondary'}" href="/ca/${e.id}.${f}">${DOWNLOADS[f].label}</a>`,
  )}</div>
</article>`;
}

const qrCache = new Map<string, Promise<string>>();

/** An inline SVG QR code of `url` (memoised: the page URL rarely changes). */
export function qrSvg(url: string): Promise<string> {
  let svg = qrCache.get(url);
  if (!svg) {
    svg = QRCode.toString(url, { type: 'svg', margin: 1, errorCorrectionLevel: 'M' }).then((s) =>
      s.replace(/^<svg /, '<svg role="img" aria-label="QR code of this page" '),
    );
    if (qrCache.size > 16) qrCache.clear();
    qrCache.set(url, svg);
  }
  return svg;
}

/** The base URL visitors reach us at: the public URL, else this request's host. */
function baseUrl(portal: Portal, req: FastifyRequest): string {
  return portal.publicUrl() ?? `${req.protocol}://${req.headers.host ?? 'localhost'}`;
}

export function registerPublic(scope: FastifyInstance, portal: Portal): void {
  scope.get('/', { config: { access: 'public' } }, async (req, reply) => {
    const base = baseUrl(portal, req);
    const now = portal.now();
    const entries = caEntries(portal.deps);
    const org = nameAttribute(portal.deps.ca.root.certificate.subject, '2.5.4.10');
    const body = html`<h1>${org ? html`${org} certificate authorities` : 'Certificate authorities'}</h1>
<p class="lead">Install these on your devices to trust certificates this organisation issues.
Before you trust one, check that its thumbprint matches the one your device shows.</p>
<section class="card qr">
${raw(await qrSvg(`${base}/`))}
<div><p><strong>On a phone?</strong> Scan the code to open this page there.</p>
<dl class="facts">
<dt>This page</dt><dd class="mono">${base}/</dd>
<dt>SCEP</dt><dd class="mono">${base}/scep</dd>
<dt>CRL</dt><dd class="mono"><a href="/crl">${base}/crl</a></dd>
</dl></div>
</section>
${entries.map((e) => caCard(e, now))}`;
    return portal.render(req, reply, { title: 'CA certificates', current: '/', body });
  });

  scope.get<{ Params: { file: string } }>(
    '/ca/:file',
    { config: { access: 'static' } },
    async (req, reply) => {
      const m = /^([a-z0-9-]+)\.(cer|crt|pem|p7b)$/.exec(req.params.file);
      const entry = m && caEntries(portal.deps).find((e) => e.id === m[1]);
      if (!m || !entry)
        return reply.code(404).type('text/plain; charset=utf-8').send('no such CA certificate\n');
      const format = m[2] as DownloadFormat;
      const d = DOWNLOADS[format];
      return reply
        .type(d.type)
        .header(
          'content-disposition',
          `${d.disposition}; filename="${fileName(entry.certificate, format)}"`,
        )
        .header('cache-control', 'public, max-age=3600')
        .send(caFile(entry, format));
    },
  );
}
