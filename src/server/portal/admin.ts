/**
 * The admin console (role admin). Every action calls the operation the CLI and the admin API
 * call (admin-ops.ts, mdm-admin.ts, mdm-profiles.ts) with the actor `portal:<username>`; those
 * operations write the audit log. After an action the browser is sent back (303) to the page
 * it came from with a fixed notice; a refusal (AdminError) shows the operation's message.
 *
 * Pages: `/admin` (CA status, pending approvals, charts), `/admin/certificates` (search, pages,
 * revoke), `/admin/requests` (approve/reject held SCEP requests), `/admin/devices` and
 * `/admin/devices/:id` (inventory), `/admin/profiles` (issuance and MDM profiles, assignments),
 * `/admin/audit` (pages).
 */
import { mailCertificate } from '../mail-ops.ts';
import type { MailFormat } from '../../mail/attachment.ts';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { describeCrl } from '../../ca/crl.ts';
import { EKU_NAMES } from '../../pki/oids.ts';
import { formatName, sha1Thumbprint, type Certificate } from '../../pki/x509.ts';
import type { RequestStatus } from '../../store/types.ts';
import * as ops from '../admin-ops.ts';
import * as mdm from '../mdm-admin.ts';
import * as mdmProfiles from '../mdm-profiles.ts';
import { barChart } from './charts.ts';
import { field, param, type Portal } from './context.ts';
import { html, query, urlPath, type SafeHtml } from './html.ts';
import { certificateStatus, colons, csrfField, statusBadge, when } from './layout.ts';
import { localPath } from './signin.ts';

const DAY = 86_400_000;
const CERTIFICATES_PER_PAGE = 25;
const AUDIT_PER_PAGE = 50;

/** What an action did, shown on the page it returns to (fixed texts: nothing from the URL). */
const NOTICES: Readonly<Record<string, string>> = {
  revoked: 'The certificate was revoked. The CRL lists it from now on.',
  approved: "The request was approved: the device's next poll gets its certificate.",
  rejected: "The request was rejected: the device's next poll gets FAILURE.",
  assigned: 'The profile was assigned. Devices get it in their next session.',
  unassigned: 'The assignment was removed. Devices remove the profile in their next session.',
  mailed: 'The certificate was mailed.',
  'mailed-switched':
    'The certificate was mailed in another format: this site blocks the one chosen (the audit log says which went).',
};

/** The formats the console mails (a PFX needs its password shown: the API and CLI do that). */
const CONSOLE_MAIL_FORMATS = ['cer', 'pem', 'p7b', 'crt'] as const;

function noticeOf(req: FastifyRequest): string | undefined {
  return NOTICES[param(req, 'notice') ?? ''];
}

/** A page number from the query: 1 or more, else 1. */
function pageOf(req: FastifyRequest): number {
  const n = Number(param(req, 'page') ?? '1');
  return Number.isSafeInteger(n) && n >= 1 && n <= 100_000 ? n : 1;
}

function pager(
  path: string,
  params: Record<string, string | undefined>,
  page: number,
  more: boolean,
) {
  if (page === 1 && !more) return '';
  return html`<nav class="pager" aria-label="Pages">
${page > 1 ? html`<a class="button secondary" href="${path}${query({ ...params, page: page - 1 })}">Previous</a>` : ''}
<span class="muted">Page ${page}</span>
${more ? html`<a class="button secondary" href="${path}${query({ ...params, page: page + 1 })}">Next</a>` : ''}
</nav>`;
}

function daysLeft(until: Date, now: Date): number {
  return Math.floor((until.getTime() - now.getTime()) / DAY);
}

function caRow(role: string, cert: Certificate, now: Date) {
  const left = daysLeft(cert.notAfter, now);
  return html`<tr><td>${role}</td><td>${formatName(cert.subject)}</td><td>${when(cert.notAfter)}</td>
<td><span class="badge ${left < 0 ? 'expired' : left < 180 ? 'expiring' : 'valid'}">${left} days</span></td>
<td class="mono">${colons(sha1Thumbprint(cert))}</td></tr>`;
}

const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

async function dashboard(portal: Portal): Promise<SafeHtml> {
  const { deps } = portal;
  const now = portal.now();
  const today = Math.floor(now.getTime() / DAY) * DAY;
  const issuedFrom = today - 29 * DAY;
  const [issued, expiring, pending, crlDer] = await Promise.all([
    deps.store.countCertificatesByInterval({
      by: 'issuedAt',
      from: new Date(issuedFrom),
      bucketMs: DAY,
      buckets: 30,
    }),
    deps.store.countCertificatesByInterval({
      by: 'notAfter',
      from: now,
      bucketMs: 7 * DAY,
      buckets: 13,
      revoked: false,
    }),
    ops.listRequests(deps, 'pending'),
    deps.enrollment.currentCrl(),
  ]);
  const crl = describeCrl(crlDer);
  const busiest = issued.reduce((best, v, i) => (v > issued[best]! ? i : best), 0);
  const issuedChart = barChart({
    id: 'issued',
    title: 'Certificates issued per day, last 30 days',
    summary: `${sum(issued)} certificates issued in the last 30 days${sum(issued) ? `; most on ${isoDay(issuedFrom + busiest * DAY)} (${issued[busiest]})` : ''}.`,
    bars: issued.map((value, i) => ({ label: isoDay(issuedFrom + i * DAY).slice(5), value })),
    labelEvery: 5,
    labelName: 'Day',
    valueName: 'Issued',
  });
  const expiringChart = barChart({
    id: 'expiring',
    title: 'Certificates expiring in the next 90 days, by week',
    summary: `${sum(expiring)} valid certificates expire in the next 91 days; ${expiring[0]} of them within 7 days.`,
    bars: expiring.map((value, i) => ({
      label: isoDay(now.getTime() + i * 7 * DAY).slice(5),
      value,
    })),
    labelEvery: 2,
    warn: true,
    labelName: 'Week from',
    valueName: 'Expiring',
  });
  const { ca, nextCa } = deps;
  return html`<h1>Dashboard</h1>
<div class="grid">
<a class="card stat" href="/admin/requests"><div class="value" id="pending-count">${pending.requests.length}</div><div class="label">requests waiting for approval</div></a>
<div class="card stat"><div class="value">${sum(issued)}</div><div class="label">issued in the last 30 days</div></div>
<div class="card stat"><div class="value">${sum(expiring)}</div><div class="label">expiring in the next 90 days</div></div>
<div class="card stat"><div class="value">${crl.revoked.length}</div><div class="label">revoked, on the CRL</div></div>
</div>
<h2>Certificate authority</h2>
<div class="table-wrap"><table>
<thead><tr><th>Role</th><th>Subject</th><th>Expires</th><th>Left</th><th>SHA-1</th></tr></thead>
<tbody>
${caRow('Root CA', ca.root.certificate, now)}
${ca.intermediates.map((c) => caRow('Intermediate CA', c, now))}
${caRow('Issuing CA', ca.issuing.certificate, now)}
${nextCa ? caRow('Next issuing CA', nextCa.issuing.certificate, now) : ''}
</tbody></table></div>
<div class="card"><dl class="facts">
<dt>CRL number</dt><dd class="mono" id="crl-number">${crl.number?.toString() ?? '–'}</dd>
<dt>This update</dt><dd>${when(crl.thisUpdate)}</dd>
<dt>Next update</dt><dd id="crl-next-update">${when(crl.nextUpdate)}</dd>
<dt>Entries</dt><dd>${crl.revoked.length} revoked certificates</dd>
<dt>Published at</dt><dd class="mono"><a href="/crl">${portal.publicUrl() ?? ''}/crl</a></dd>
</dl></div>
<h2>Activity</h2>
<div class="grid">${issuedChart}${expiringChart}</div>`;
}

function revokeForm(csrf: string, serial: string, back: string) {
  return html`<form class="inline" method="post" action="${urlPath('/admin/certificates', serial, 'revoke')}">${csrfField(csrf)}
<input type="hidden" name="back" value="${back}">
<label class="sr-only" for="reason-${serial}">Reason</label>
<select id="reason-${serial}" name="reason">${[...ops.REVOCATION_REASONS.keys()].map((r) => html`<option value="${r}">${r}</option>`)}</select>
<button class="danger" type="submit">Revoke</button></form>`;
}

function mailForm(csrf: string, serial: string, back: string) {
  return html`<form class="inline" method="post" action="${urlPath('/admin/certificates', serial, 'mail')}">${csrfField(csrf)}
<input type="hidden" name="back" value="${back}">
<label class="sr-only" for="to-${serial}">Mail to</label>
<input id="to-${serial}" type="email" name="to" required placeholder="user@example.com">
<label class="sr-only" for="format-${serial}">Format</label>
<select id="format-${serial}" name="format">${CONSOLE_MAIL_FORMATS.map((f) => html`<option value="${f}">.${f}</option>`)}</select>
<button type="submit">Mail</button></form>`;
}

async function certificatesPage(portal: Portal, req: FastifyRequest): Promise<SafeHtml> {
  const q = (param(req, 'q') ?? '').slice(0, 200);
  const state = param(req, 'state') ?? '';
  const page = pageOf(req);
  const { certificates } = await ops.listCertificates(portal.deps, {
    limit: CERTIFICATES_PER_PAGE + 1,
    offset: (page - 1) * CERTIFICATES_PER_PAGE,
    ...(q.trim() ? { search: q } : {}),
    ...(state === 'revoked' ? { revoked: true } : state === 'active' ? { revoked: false } : {}),
  });
  const rows = certificates.slice(0, CERTIFICATES_PER_PAGE);
  const now = portal.now();
  const csrf = portal.signedIn(req).csrf;
  const back = `/admin/certificates${query({ q, state, page: page > 1 ? page : undefined })}`;
  const mail = portal.deps.mail !== undefined;
  return html`<h1>Issued certificates</h1>
<form class="card inline" method="get" action="/admin/certificates" role="search">
<label class="sr-only" for="q">Search</label>
<input id="q" type="search" name="q" value="${q}" placeholder="Subject, serial, email, DNS name…">
<label class="sr-only" for="state">State</label>
<select id="state" name="state">
${[
  ['', 'All'],
  ['active', 'Not revoked'],
  ['revoked', 'Revoked'],
].map(([v, l]) => html`<option value="${v}"${v === state ? html` selected` : ''}>${l}</option>`)}
</select>
<button type="submit">Search</button></form>
${
  rows.length === 0
    ? html`<p class="card muted">No certificates${q ? html` match “${q}”` : ''}.</p>`
    : html`<div class="table-wrap"><table>
<thead><tr><th>Serial</th><th>Subject and names</th><th>Profile</th><th>Issued</th><th>Expires</th><th>Status</th><th>Revoke</th>${mail ? html`<th>Mail</th>` : ''}</tr></thead>
<tbody>${rows.map((c) => {
        const status = certificateStatus(
          { revoked: c.revoked !== null, notAfter: new Date(c.notAfter) },
          now,
        );
        return html`<tr id="cert-${c.serial}">
<td class="mono">${c.serial}</td>
<td>${c.subject}${c.altNames.length ? html`<br><span class="muted">${c.altNames.join(', ')}</span>` : ''}</td>
<td>${c.profile}</td><td>${when(c.issuedAt)}</td><td>${when(c.notAfter)}</td>
<td>${statusBadge(status)}${c.revoked ? html`<br><span class="muted">${c.revoked.reason}</span>` : ''}</td>
<td>${c.revoked ? '' : revokeForm(csrf, c.serial, back)}</td>${mail ? html`<td>${c.revoked ? '' : mailForm(csrf, c.serial, back)}</td>` : ''}</tr>`;
      })}</tbody></table></div>`
}
${pager('/admin/certificates', { q, state }, page, certificates.length > CERTIFICATES_PER_PAGE)}`;
}

const REQUEST_STATUSES: readonly RequestStatus[] = ['pending', 'approved', 'rejected', 'issued'];

async function requestsPage(portal: Portal, req: FastifyRequest): Promise<SafeHtml> {
  const wanted = param(req, 'status') ?? 'pending';
  const status = REQUEST_STATUSES.find((s) => s === wanted) ?? 'pending';
  const { requests } = await ops.listRequests(portal.deps, status);
  const csrf = portal.signedIn(req).csrf;
  return html`<h1>Enrollment requests</h1>
<p class="lead">SCEP requests of profiles that need approval wait here (PENDING); the device's next poll gets the answer.</p>
<nav class="pager" aria-label="Status">${REQUEST_STATUSES.map((s) =>
    s === status
      ? html`<span class="button">${s}</span>`
      : html`<a class="button secondary" href="/admin/requests${query({ status: s })}">${s}</a>`,
  )}</nav>
${
  requests.length === 0
    ? html`<p class="card muted">No ${status} requests.</p>`
    : html`<div class="table-wrap"><table>
<thead><tr><th>Subject</th><th>Profile</th><th>Received</th><th>Transaction</th><th>Decision</th></tr></thead>
<tbody>${requests.map(
        (
          r,
        ) => html`<tr id="request-${r.id}"><td>${r.subject}</td><td>${r.profile}</td><td>${when(r.createdAt)}</td>
<td class="mono">${r.transactionId.slice(0, 16)}…</td>
<td>${
          r.status === 'pending'
            ? html`<form class="inline" method="post" action="${urlPath('/admin/requests', r.id, 'approve')}">${csrfField(csrf)}<button type="submit">Approve</button></form>
<form class="inline" method="post" action="${urlPath('/admin/requests', r.id, 'reject')}">${csrfField(csrf)}<button class="danger" type="submit">Reject</button></form>`
            : html`<span class="badge ${r.status === 'rejected' ? 'revoked' : 'valid'}">${r.status}</span>`
        }</td></tr>`,
      )}</tbody></table></div>`
}`;
}

async function devicesPage(portal: Portal): Promise<SafeHtml> {
  const { devices } = await mdm.listDevices(portal.deps, { limit: 500 });
  return html`<h1>Devices</h1>
${
  devices.length === 0
    ? html`<p class="card muted">No device has enrolled yet.</p>`
    : html`<div class="table-wrap"><table>
<thead><tr><th>Name</th><th>User</th><th>Enrolled</th><th>Last seen</th><th>State</th></tr></thead>
<tbody>${devices.map(
        (
          d,
        ) => html`<tr><td><a href="${urlPath('/admin/devices', d.id)}">${d.name}</a><br><span class="muted mono">${d.id}</span></td>
<td>${d.user ?? '–'}</td><td>${when(d.enrolledAt)}</td><td>${when(d.lastSeenAt)}</td>
<td>${d.unenrolledAt ? html`<span class="badge revoked">unenrolled</span>` : html`<span class="badge valid">enrolled</span>`}</td></tr>`,
      )}</tbody></table></div>`
}`;
}

/** `Root`, `My`, `CA`…: the store a certificate node is in. */
function storeOf(uri: string): string {
  const parts = uri.split('/');
  return parts.at(-2) ?? uri;
}

async function devicePage(portal: Portal, id: string): Promise<SafeHtml> {
  const { device, certificates, commands } = await mdm.showDevice(portal.deps, id, { limit: 20 });
  const now = portal.now();
  return html`<h1>${device.name}</h1>
<div class="card"><dl class="facts">
<dt>Device id</dt><dd class="mono">${device.id}</dd>
<dt>Hardware id</dt><dd class="mono">${device.hardwareId}</dd>
<dt>User</dt><dd>${device.user ?? '–'}</dd>
<dt>MDM certificate</dt><dd class="mono"><a href="/admin/certificates${query({ q: device.certificateSerial })}">${device.certificateSerial}</a></dd>
<dt>Enrolled</dt><dd>${when(device.enrolledAt)}</dd>
<dt>Last seen</dt><dd>${when(device.lastSeenAt)}</dd>
${Object.entries(device.info)
  .filter(([k]) => /^(DevInfo|DevDetail)\//.test(k))
  .slice(0, 8)
  .map(([k, v]) => html`<dt>${k.split('/').at(-1)}</dt><dd>${v}</dd>`)}
</dl></div>
<h2>Certificates on the device</h2>
${
  certificates.length === 0
    ? html`<p class="card muted">The device has not reported its certificates yet.</p>`
    : html`<div class="table-wrap"><table>
<thead><tr><th>Store</th><th>Subject</th><th>Issuer</th><th>Expires</th><th>SHA-1</th></tr></thead>
<tbody>${certificates.map(
        (c) => html`<tr><td>${storeOf(c.uri)}</td><td>${c.subject}</td><td>${c.issuer}</td>
<td>${when(c.notAfter)} ${statusBadge(certificateStatus({ revoked: false, notAfter: new Date(c.notAfter) }, now))}</td>
<td class="mono">${colons(c.thumbprint)}</td></tr>`,
      )}</tbody></table></div>`
}
<h2>Recent commands</h2>
${
  commands.length === 0
    ? html`<p class="card muted">No commands.</p>`
    : html`<div class="table-wrap"><table>
<thead><tr><th>Command</th><th>From</th><th>Queued</th><th>Sent</th><th>Status</th></tr></thead>
<tbody>${commands.map(
        (
          c,
        ) => html`<tr><td>${c.command.kind}</td><td>${c.origin ?? '–'}</td><td>${when(c.createdAt)}</td>
<td>${when(c.sentAt)}${c.sentCount > 1 ? html` (${c.sentCount}×)` : ''}</td><td>${c.status ?? 'open'}</td></tr>`,
      )}</tbody></table></div>`
}`;
}

function settingsSummary(s: mdmProfiles.ProfileSettings): string {
  switch (s.kind) {
    case 'trusted':
      return `${s.scope} ${s.store}`;
    case 'scep':
      return `${s.scope}, subject ${s.subject}, issuance profile ${s.issuanceProfile}`;
    case 'pfx':
      return `${s.scope}, ${s.imported ? `imported PFX ${s.imported.thumbprint}` : 'server-generated identity'}`;
  }
}

async function profilesPage(portal: Portal, req: FastifyRequest): Promise<SafeHtml> {
  const { profiles } = await mdmProfiles.listProfiles(portal.deps);
  const csrf = portal.signedIn(req).csrf;
  const issuance = [...portal.deps.profiles.values()];
  return html`<h1>Profiles</h1>
<h2>MDM profiles and assignments</h2>
${
  profiles.length === 0
    ? html`<p class="card muted">No MDM profiles (<code>certpost profile create</code>).</p>`
    : profiles.map(
        (
          p,
        ) => html`<section class="card" id="profile-${p.name}"><h3>${p.name} <span class="badge valid">${p.kind}</span></h3>
<p class="muted">${settingsSummary(p.settings)}</p>
${
  p.assignments.length === 0
    ? html`<p>Not assigned.</p>`
    : html`<ul>${p.assignments.map(
        (a) => html`<li>${a.kind}${a.target ? html` <span class="mono">${a.target}</span>` : ''}
<form class="inline" method="post" action="${urlPath('/admin/profiles', p.name, 'unassign')}">${csrfField(csrf)}
<input type="hidden" name="kind" value="${a.kind}"><input type="hidden" name="target" value="${a.target}">
<button class="secondary" type="submit">Unassign</button></form></li>`,
      )}</ul>`
}
<form class="inline" method="post" action="${urlPath('/admin/profiles', p.name, 'assign')}">${csrfField(csrf)}
<label class="sr-only" for="kind-${p.name}">Assign to</label>
<select id="kind-${p.name}" name="kind"><option value="user">user (UPN)</option><option value="device">device (id)</option><option value="all">all devices</option></select>
<label class="sr-only" for="target-${p.name}">Target</label>
<input id="target-${p.name}" type="text" name="target" placeholder="ann@contoso.com or device id">
<button type="submit">Assign</button></form>
</section>`,
      )
}
<h2>Issuance profiles</h2>
<div class="table-wrap"><table>
<thead><tr><th>Name</th><th>Validity</th><th>Extended key usage</th><th>Keys</th><th>Approval</th><th>Self-service</th></tr></thead>
<tbody>${issuance.map(
    (p) => html`<tr><td>${p.name}</td><td>${p.validityDays} days</td>
<td>${p.extendedKeyUsage.map((o) => EKU_NAMES[o] ?? o).join(', ') || '–'}</td>
<td>${p.allowedKeyTypes.join(', ')}</td><td>${p.requireApproval ? 'required' : '–'}</td><td>${p.selfService ? 'yes' : '–'}</td></tr>`,
  )}</tbody></table></div>`;
}

async function auditPage(portal: Portal, req: FastifyRequest): Promise<SafeHtml> {
  const action = (param(req, 'action') ?? '').trim().slice(0, 100);
  const page = pageOf(req);
  const { audit } = await ops.listAudit(portal.deps, {
    limit: AUDIT_PER_PAGE + 1,
    offset: (page - 1) * AUDIT_PER_PAGE,
    ...(action ? { action } : {}),
  });
  return html`<h1>Audit log</h1>
<form class="card inline" method="get" action="/admin/audit">
<label for="action">Action</label>
<input id="action" type="text" name="action" value="${action}" placeholder="certificate.revoked">
<button type="submit">Filter</button></form>
<div class="table-wrap"><table>
<thead><tr><th>When</th><th>Who</th><th>What</th><th>Target</th><th>Details</th></tr></thead>
<tbody>${audit.slice(0, AUDIT_PER_PAGE).map(
    (
      e,
    ) => html`<tr><td>${when(e.at)}</td><td>${e.actor}</td><td>${e.action}</td><td class="mono">${e.target}</td>
<td class="mono">${Object.keys(e.details).length ? JSON.stringify(e.details) : ''}</td></tr>`,
  )}</tbody></table></div>
${pager('/admin/audit', { action }, page, audit.length > AUDIT_PER_PAGE)}`;
}

function assignTarget(kind: string | undefined, target: string): mdmProfiles.AssignTarget {
  switch (kind) {
    case 'device':
      return { kind: 'device', id: target };
    case 'user':
      return { kind: 'user', upn: target };
    case 'all':
      return { kind: 'all' };
    default:
      throw new ops.AdminError('ERR_ADMIN_INVALID', 'assign to a device, a user or all devices');
  }
}

export function registerAdminConsole(scope: FastifyInstance, portal: Portal): void {
  const admin = { config: { access: 'admin' } } as const;
  // The console's pages: path (also the menu entry they mark current), title, body.
  const pages: [string, string, (req: FastifyRequest) => Promise<SafeHtml>][] = [
    ['/admin', 'Dashboard', () => dashboard(portal)],
    ['/admin/certificates', 'Certificates', (req) => certificatesPage(portal, req)],
    ['/admin/requests', 'Requests', (req) => requestsPage(portal, req)],
    ['/admin/devices', 'Devices', () => devicesPage(portal)],
    ['/admin/profiles', 'Profiles', (req) => profilesPage(portal, req)],
    ['/admin/audit', 'Audit log', (req) => auditPage(portal, req)],
  ];
  for (const [path, title, body] of pages)
    scope.get(path, admin, async (req, reply) =>
      portal.render(req, reply, {
        title,
        current: path,
        notice: noticeOf(req),
        body: await body(req),
      }),
    );
  scope.get<{ Params: { id: string } }>('/admin/devices/:id', admin, async (req, reply) =>
    portal.render(req, reply, {
      title: 'Device',
      current: '/admin/devices',
      body: await devicePage(portal, req.params.id),
    }),
  );

  scope.post<{ Params: { serial: string } }>(
    '/admin/certificates/:serial/revoke',
    admin,
    async (req, reply) => {
      const reason = field(req, 'reason') ?? 'unspecified';
      await ops.revokeCertificate(
        portal.deps,
        portal.actor(req),
        req.params.serial,
        reason as ops.RevocationReasonName,
      );
      const back = localPath(field(req, 'back')) ?? '/admin/certificates';
      return reply.redirect(`${back}${back.includes('?') ? '&' : '?'}notice=revoked`, 303);
    },
  );

  scope.post<{ Params: { serial: string } }>(
    '/admin/certificates/:serial/mail',
    admin,
    async (req, reply) => {
      const format = field(req, 'format') ?? 'cer';
      if (!(CONSOLE_MAIL_FORMATS as readonly string[]).includes(format))
        throw new ops.AdminError(
          'ERR_ADMIN_INVALID',
          `the console mails ${CONSOLE_MAIL_FORMATS.join(', ')}`,
        );
      const sent = await mailCertificate(portal.deps, portal.actor(req), {
        to: field(req, 'to') ?? '',
        source: { serial: req.params.serial },
        format: format as MailFormat,
      });
      const back = localPath(field(req, 'back')) ?? '/admin/certificates';
      const notice = sent.switched ? 'mailed-switched' : 'mailed';
      return reply.redirect(`${back}${back.includes('?') ? '&' : '?'}notice=${notice}`, 303);
    },
  );

  for (const decision of ['approve', 'reject'] as const)
    scope.post<{ Params: { id: string } }>(
      `/admin/requests/:id/${decision}`,
      admin,
      async (req, reply) => {
        const r = await ops.decideRequest(portal.deps, portal.actor(req), req.params.id, decision);
        return reply.redirect(`/admin/requests${query({ notice: r.status })}`, 303);
      },
    );

  for (const action of ['assign', 'unassign'] as const)
    scope.post<{ Params: { name: string } }>(
      `/admin/profiles/:name/${action}`,
      admin,
      async (req, reply) => {
        const target = assignTarget(field(req, 'kind'), (field(req, 'target') ?? '').trim());
        const run = action === 'assign' ? mdmProfiles.assignProfile : mdmProfiles.unassignProfile;
        await run(portal.deps, portal.actor(req), req.params.name, target);
        return reply.redirect(`/admin/profiles${query({ notice: `${action}ed` })}`, 303);
      },
    );
}
