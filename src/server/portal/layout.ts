/**
 * The one page layout: header with the navigation a visitor may use (public, signed-in user,
 * administrator), the main content, a footer. No script: the CSP forbids it and nothing needs it.
 */
import type { UserRecord } from '../../store/types.ts';
import { STYLESHEET } from './assets.ts';
import { html, type SafeHtml } from './html.ts';

export interface PageOptions {
  readonly title: string;
  readonly body: SafeHtml;
  /** The signed-in user and the session's CSRF token (for the sign-out form), if any. */
  readonly session?: { readonly user: UserRecord; readonly csrf: string } | undefined;
  /** Path of the current page, marked in the navigation. */
  readonly current?: string;
  readonly notice?: string | undefined;
  readonly error?: string | undefined;
}

const PUBLIC_NAV = [['/', 'CA certificates']] as const;
const USER_NAV = [['/my', 'My certificates']] as const;
const ADMIN_NAV = [
  ['/admin', 'Dashboard'],
  ['/admin/certificates', 'Certificates'],
  ['/admin/requests', 'Requests'],
  ['/admin/devices', 'Devices'],
  ['/admin/profiles', 'Profiles'],
  ['/admin/audit', 'Audit log'],
] as const;

/** The hidden form field carrying the CSRF token. */
export function csrfField(token: string): SafeHtml {
  return html`<input type="hidden" name="_csrf" value="${token}">`;
}

export function page(o: PageOptions): string {
  const role = o.session?.user.role;
  const nav = [...PUBLIC_NAV, ...(role ? USER_NAV : []), ...(role === 'admin' ? ADMIN_NAV : [])];
  const link = ([href, label]: readonly [string, string]) =>
    html`<a href="${href}"${o.current === href ? html` aria-current="page"` : ''}>${label}</a>`;
  const who = o.session
    ? html`<div class="who"><span>${o.session.user.displayName}</span>
        <form method="post" action="/signout">${csrfField(o.session.csrf)}<button type="submit">Sign out</button></form></div>`
    : html`<div class="who"><a class="button secondary" href="/signin">Sign in</a></div>`;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${o.title} · certpost</title>
<link rel="stylesheet" href="${STYLESHEET}">
</head>
<body>
<header class="top"><div class="bar">
<a class="brand" href="/">certpost</a>
<nav aria-label="Main">${nav.map(link)}</nav>
${who}
</div></header>
<main>
${o.notice ? html`<p class="notice" role="status">${o.notice}</p>` : ''}
${o.error ? html`<p class="error" role="alert">${o.error}</p>` : ''}
${o.body}
</main>
<footer>certpost · certificates for managed devices</footer>
</body>
</html>
`.toString();
}

/** `2026-05-01 08:00 UTC`: dates as the portal shows them (one zone for everyone). */
export function when(d: Date | string | null | undefined): string {
  if (d === null || d === undefined) return '–';
  const date = typeof d === 'string' ? new Date(d) : d;
  return `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** `AB:CD:…`: a hex thumbprint as certificate viewers show it. */
export function colons(hex: string): string {
  return hex.toUpperCase().replace(/(..)(?=.)/g, '$1:');
}

export type CertificateStatus = 'valid' | 'expiring' | 'expired' | 'revoked';

/** A certificate this close to its end is shown as expiring. */
const EXPIRING_MS = 30 * 86_400_000;

/** Where a certificate stands at `now`: revoked, expired, expiring (30 days), or valid. */
export function certificateStatus(
  c: { readonly revoked: boolean; readonly notAfter: Date },
  now: Date,
): CertificateStatus {
  if (c.revoked) return 'revoked';
  if (c.notAfter <= now) return 'expired';
  if (c.notAfter.getTime() - now.getTime() < EXPIRING_MS) return 'expiring';
  return 'valid';
}

export function statusBadge(status: CertificateStatus): SafeHtml {
  return html`<span class="badge ${status}">${status}</span>`;
}
