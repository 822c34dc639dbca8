/**
 * Self-service for a signed-in user (role user or admin): "my certificates", requesting an
 * identity certificate, and the one-time PFX download.
 *
 * Which certificates are a user's (the rule the page applies, and the README states):
 * 1. every certificate of this CA whose subject alternative names include the user's email
 *    (`email:`) or, for a UPN user name, the UPN (`upn:`) — identities the portal or an MDM PFX
 *    profile issued for them, and any SCEP certificate that names them;
 * 2. every certificate of this CA on a device enrolled by the user (the device's user is their
 *    UPN or email): the device's MDM client certificate, and what its inventory reports.
 *
 * Requesting: profiles with `selfService` (built in: `user`). The server makes an RSA key,
 * issues the certificate through the enrollment service (`issueAuthenticated`: audited, checked
 * against the profile), packs a PFX with a random password, and escrows it (pfx-identity.ts).
 * The page shows the password once and a link `/download/<token>` that works once, for this
 * user, for {@link LINK_TTL_MS}; the store keeps only the token's SHA-256, the escrow keeps the
 * PFX, and the password is kept only sealed for the CA (recovery: `certpost certificates
 * recover`). A second use of the link gets a page saying so, not the file.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { secretHash } from '../../ca/enrollment.ts';
import type { IssuanceProfile } from '../../ca/profile.ts';
import type { Pkcs12Profile } from '../../pki/pkcs12.ts';
import type { CertificateRecord, UserRecord } from '../../store/types.ts';
import { AdminError } from '../admin-ops.ts';
import { issueIdentityWithPassword } from '../pfx-identity.ts';
import { field, type Portal, type PortalDeps } from './context.ts';
import { html } from './html.ts';
import { certificateStatus, colons, csrfField, statusBadge, when } from './layout.ts';
import { newToken } from './session.ts';

/** How long a download link works. */
export const LINK_TTL_MS = 15 * 60_000;
/** The alt names that name this user: `email:<email>`, and `upn:<username>` for a UPN. */
function namesOf(user: UserRecord): string[] {
  return [
    ...(user.email ? [`email:${user.email}`] : []),
    ...(user.username.includes('@') ? [`upn:${user.username}`] : []),
  ];
}

export interface MyCertificate {
  readonly certificate: CertificateRecord;
  /** Where it is: `identity`, or the names of the devices holding it. */
  readonly where: readonly string[];
}

/** The user's certificates by the rule above, newest first, each once. */
export async function myCertificates(
  deps: Pick<PortalDeps, 'store'>,
  user: UserRecord,
): Promise<MyCertificate[]> {
  const { store } = deps;
  const found = new Map<string, { certificate: CertificateRecord; where: Set<string> }>();
  const add = (c: CertificateRecord | undefined, where: string) => {
    if (!c) return;
    const have = found.get(c.serial) ?? { certificate: c, where: new Set<string>() };
    have.where.add(where);
    found.set(c.serial, have);
  };
  const names = namesOf(user);
  if (names.length)
    for (const c of await store.listCertificates({ altNames: names, limit: 500 }))
      add(c, 'identity');
  const upns = new Set([user.username, ...(user.email ? [user.email.toLowerCase()] : [])]);
  for (const upn of upns) {
    if (!upn.includes('@')) continue;
    for (const d of await store.listDevices({ user: upn, enrolled: true, limit: 100 })) {
      const where = `device ${d.name}`;
      add(await store.getCertificate(d.certificateSerial), where);
      for (const held of await store.listInventory(d.id))
        add(await store.getCertificateBySha1(held.thumbprint.toLowerCase()), where);
    }
  }
  return [...found.values()]
    .map((f) => ({ certificate: f.certificate, where: [...f.where] }))
    .toSorted(
      (a, b) =>
        b.certificate.issuedAt.getTime() - a.certificate.issuedAt.getTime() ||
        a.certificate.serial.localeCompare(b.certificate.serial),
    );
}

/** The profiles users may request from the portal, by name. */
export function selfServiceProfiles(deps: Pick<PortalDeps, 'profiles'>): IssuanceProfile[] {
  return [...deps.profiles.values()]
    .filter((p) => p.selfService)
    .toSorted((a, b) => a.name.localeCompare(b.name));
}

const FORMATS: Readonly<Record<Pkcs12Profile, string>> = {
  modern: 'Modern (AES-256): Windows 10 1709 and later, macOS, iOS, current Android',
  compat: 'Compatible (3DES): older Windows and Android',
};

function table(rows: readonly MyCertificate[], now: Date) {
  if (rows.length === 0) return html`<p class="card muted">You have no certificates yet.</p>`;
  return html`<div class="table-wrap"><table>
<thead><tr><th>Subject</th><th>Serial</th><th>Profile</th><th>Where</th><th>Expires</th><th>Status</th></tr></thead>
<tbody>${rows.map(
    (r) => html`<tr>
<td>${r.certificate.subject}</td>
<td class="mono">${r.certificate.serial}</td>
<td>${r.certificate.profile}</td>
<td>${r.where.join(', ')}</td>
<td>${when(r.certificate.notAfter)}</td>
<td>${statusBadge(certificateStatus({ revoked: r.certificate.revokedAt !== null, notAfter: r.certificate.notAfter }, now))}</td>
</tr>`,
  )}</tbody></table></div>`;
}

function requestForm(portal: Portal, req: FastifyRequest, user: UserRecord) {
  const profiles = selfServiceProfiles(portal.deps);
  if (profiles.length === 0) return '';
  if (namesOf(user).length === 0)
    return html`<p class="card muted">Your account has no email address or UPN, which a personal certificate needs: ask an administrator.</p>`;
  return html`<section class="card"><h2>Request a certificate</h2>
<p class="muted">The server makes the key and gives you a PFX file with its password. The password is shown once, and the download link works once, for ${LINK_TTL_MS / 60_000} minutes.</p>
<form method="post" action="/my/request">${csrfField(portal.signedIn(req).csrf)}
<label for="profile">Profile</label>
<select id="profile" name="profile">${profiles.map((p) => html`<option value="${p.name}">${p.name}</option>`)}</select>
<label for="format">PFX format</label>
<select id="format" name="format">${(Object.keys(FORMATS) as Pkcs12Profile[]).map((f) => html`<option value="${f}">${FORMATS[f]}</option>`)}</select>
<p><button type="submit">Request certificate</button></p>
</form></section>`;
}

/** The subject of a user's identity: `CN=<display name>` (quotes and backslashes dropped). */
function subjectOf(user: UserRecord): string {
  return `CN="${user.displayName.replace(/["\\]/g, '')}"`;
}

function linkRefused(
  portal: Portal,
  req: FastifyRequest,
  reply: FastifyReply,
  status: number,
  why: string,
) {
  return portal.render(req, reply, {
    title: 'Download not available',
    status,
    error: why,
    body: html`<p><a href="/my">Back to my certificates</a></p>`,
  });
}

export function registerSelfService(scope: FastifyInstance, portal: Portal): void {
  const { store } = portal.deps;

  scope.get('/my', { config: { access: 'user' } }, async (req, reply) => {
    const { user } = portal.signedIn(req);
    const rows = await myCertificates(portal.deps, user);
    const body = html`<h1>My certificates</h1>
<p class="lead">Signed in as ${user.displayName} (${user.username}).</p>
${table(rows, portal.now())}
${requestForm(portal, req, user)}`;
    return portal.render(req, reply, { title: 'My certificates', current: '/my', body });
  });

  scope.post('/my/request', { config: { access: 'user' } }, async (req, reply) => {
    const { user } = portal.signedIn(req);
    const name = field(req, 'profile') ?? '';
    const profile = selfServiceProfiles(portal.deps).find((p) => p.name === name);
    if (!profile)
      throw new AdminError('ERR_ADMIN_UNKNOWN_PROFILE', `no self-service profile "${name}"`);
    const format = field(req, 'format') ?? 'modern';
    if (format !== 'modern' && format !== 'compat')
      throw new AdminError('ERR_ADMIN_INVALID', 'the PFX format is modern or compat');
    const names = namesOf(user);
    if (names.length === 0)
      throw new AdminError('ERR_ADMIN_INVALID', 'your account has no email address or UPN');
    const actor = portal.actor(req);
    let identity;
    try {
      identity = await issueIdentityWithPassword(
        { enrollment: portal.deps.enrollment, store, ca: portal.deps.ca, now: portal.now },
        {
          subject: subjectOf(user),
          subjectAltNames: names.map((n) => {
            const [type, ...value] = n.split(':');
            return { type: type as 'email' | 'upn', value: value.join(':') };
          }),
          issuanceProfile: profile,
          keyBits: profile.minRsaBits > 3072 ? 4096 : profile.minRsaBits > 2048 ? 3072 : 2048,
          pfxFormat: format,
          escrow: true,
          actor,
        },
      );
    } catch (e) {
      req.log.warn({ err: e, profile: profile.name }, 'portal: identity refused');
      throw new AdminError(
        'ERR_ADMIN_INVALID',
        `the certificate could not be issued: ${(e as Error).message}`,
      );
    }
    const token = newToken();
    const now = portal.now();
    const expiresAt = new Date(now.getTime() + LINK_TTL_MS);
    await store.createDownloadLink({
      tokenHash: secretHash(token),
      userId: user.id,
      kind: 'pfx',
      target: identity.serial,
      createdAt: now,
      expiresAt,
    });
    await store.appendAudit({
      at: now,
      actor,
      action: 'download-link.created',
      target: identity.serial,
      details: { kind: 'pfx', profile: profile.name, expiresAt: expiresAt.toISOString() },
    });
    const body = html`<h1>Your certificate is ready</h1>
<section class="card">
<h2>1. Copy the password</h2>
<p>The PFX file is protected by this password. It is shown <strong>only now</strong>: copy it before you leave this page.</p>
<p><code class="secret" id="pfx-password">${identity.password}</code></p>
<h2>2. Download the PFX file</h2>
<p>The link works <strong>once</strong>, until ${when(expiresAt)}.</p>
<p><a class="button" id="pfx-download" href="/download/${token}">Download PFX</a></p>
<dl class="facts">
<dt>Subject</dt><dd>${subjectOf(user)}</dd>
<dt>Serial</dt><dd class="mono">${identity.serial}</dd>
<dt>SHA-1</dt><dd class="mono">${colons(identity.thumbprint)}</dd>
<dt>Profile</dt><dd>${profile.name}</dd>
</dl>
</section>
<p><a href="/my">Back to my certificates</a></p>`;
    return portal.render(req, reply, { title: 'Your certificate', current: '/my', body });
  });

  scope.get<{ Params: { token: string } }>(
    '/download/:token',
    { config: { access: 'user' } },
    async (req, reply) => {
      const { user } = portal.signedIn(req);
      const token = req.params.token;
      const hash = /^[A-Za-z0-9_-]{43}$/.test(token) ? secretHash(token) : undefined;
      const now = portal.now();
      const used = hash ? await store.consumeDownloadLink(hash, user.id, now) : undefined;
      const escrow = used ? await store.getEscrow(used.target) : undefined;
      if (used && escrow) {
        await store.appendAudit({
          at: now,
          actor: portal.actor(req),
          action: 'download-link.used',
          target: used.target,
          details: { kind: used.kind },
        });
        const name = `${user.username.replace(/[^a-z0-9]+/g, '-')}-${used.target.slice(0, 8)}.pfx`;
        return reply
          .type('application/x-pkcs12')
          .header('content-disposition', `attachment; filename="${name}"`)
          .send(Buffer.from(escrow.pfx));
      }
      const link = hash ? await store.getDownloadLink(hash) : undefined;
      if (link && link.userId === user.id) {
        await store.appendAudit({
          at: now,
          actor: portal.actor(req),
          action: 'download-link.refused',
          target: link.target,
          details: { reason: link.usedAt ? 'used' : 'expired' },
        });
        return linkRefused(
          portal,
          req,
          reply,
          410,
          link.usedAt
            ? `This download link was used at ${when(link.usedAt)}: each link works once. Request a new certificate, or ask an administrator to recover the key.`
            : 'This download link has expired. Request a new certificate.',
        );
      }
      return linkRefused(portal, req, reply, 404, 'This download link is not valid.');
    },
  );
}
