/**
 * Which client certificate a Wi-Fi or VPN profile with given criteria would pick (design.md
 * §1: the seed's known issue, several client certificates and a filter too loose to tell them
 * apart). The criteria are those of Windows' EAP-TLS filter (EapTlsConnectionPropertiesV2
 * `FilteringInfo`: `CAHashList`, `ClientAuthEKUList`, `AnyPurposeEKUList`,
 * `AllPurposeEnabled`) and the certificate template that SCEP profiles request, applied to the
 * certificates of one store (device My by default):
 *
 * 1. valid now (notBefore ≤ now ≤ notAfter);
 * 2. its private key is on the device;
 * 3. EKU, when `ekus` are given: the certificate lists one of them; one that lists
 *    anyExtendedKeyUsage matches unless `anyPurpose` is false, one without the extension (all
 *    purposes, RFC 5280 §4.2.1.12) unless `allPurpose` is false;
 * 4. issuer, when `issuers` are given: one of them is a CA of the certificate's chain as the
 *    device builds it (trust.ts: Root and CA stores). A value of 40 hex digits is a SHA-1
 *    thumbprint (`IssuerHash`); any other is a name, equal to a CA's subject DN (case and the
 *    spaces around `,`/`=` ignored) or to its CN. The certificate's own issuer name counts
 *    too, for a chain that stops below it;
 * 5. template, when given: the Microsoft template extension names it, the v1 name
 *    (1.3.6.1.4.1.311.20.2) case-insensitively or the v2 OID (1.3.6.1.4.1.311.21.7).
 *
 * Several matches: Windows does not document which one it takes (a user certificate may be
 * offered in a prompt, a machine certificate gets "the highest weight"), so the answer is not
 * reliable and a warning lists them all. The one reported as chosen is the most recently
 * issued: latest notBefore, then latest notAfter, then the smallest thumbprint (so that the
 * answer is deterministic).
 */
import { EKU_NAMES } from '../pki/oids.ts';
import {
  certificateTemplate,
  extendedKeyUsage,
  formatName,
  nameAttribute,
  sha1Thumbprint,
  type Certificate,
  type Name,
} from '../pki/x509.ts';
import type { DeviceAgent } from './agent.ts';
import { DeviceError } from './errors.ts';
import type { CertificateEntry, Scope, StoreName } from './state.ts';
import { judgeOnDevice } from './trust.ts';

const ANY_EKU = '2.5.29.37.0';
const CN = '2.5.4.3';

export interface SelectionCriteria {
  /** CA thumbprints or names; a certificate matches with any one of them in its chain. */
  readonly issuers?: readonly string[];
  /** EKU OIDs or names (`clientAuth`); a certificate matches with any one of them. */
  readonly ekus?: readonly string[];
  readonly template?: string;
  /** `My` by default. */
  readonly store?: StoreName;
  /** `device` by default. */
  readonly scope?: Scope;
  /** A certificate with anyExtendedKeyUsage matches an EKU filter (default true). */
  readonly anyPurpose?: boolean;
  /** A certificate without the EKU extension matches an EKU filter (default true). */
  readonly allPurpose?: boolean;
  readonly at?: Date;
}

export interface SelectionCheck {
  readonly check: 'validity' | 'private-key' | 'eku' | 'issuer' | 'template';
  readonly ok: boolean;
  /** For people: what was found. */
  readonly detail: string;
}

export interface SelectionCandidate {
  readonly thumbprint: string;
  readonly subject: string;
  readonly issuer: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly matches: boolean;
  readonly checks: readonly SelectionCheck[];
}

export interface Selection {
  readonly scope: Scope;
  readonly store: StoreName;
  /** Every certificate of the store, matches first in the order of preference. */
  readonly candidates: readonly SelectionCandidate[];
  /** The thumbprint reported as chosen (see the module comment), or null when none matches. */
  readonly chosen: string | null;
  /** Present when more than one certificate matches. */
  readonly warning?: string;
}

const EKU_OIDS: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(EKU_NAMES).map(([oid, name]) => [name.toLowerCase(), oid]),
);

/** An EKU given by OID or by name (`clientAuth`, `emailProtection`…), as its OID. */
export function ekuOid(value: string): string {
  if (/^\d+(\.\d+)+$/.test(value)) return value;
  const oid = EKU_OIDS[value.toLowerCase()];
  if (!oid)
    throw new DeviceError(
      'ERR_DEVICE_BAD_PARAMETER',
      `unknown EKU "${value}": give an OID or one of ${Object.values(EKU_NAMES).join(', ')}`,
    );
  return oid;
}

/** A DN as text, compared without case and without spaces around separators. */
const canonical = (s: string) => s.replace(/\s*([,=+])\s*/g, '$1').toLowerCase();

function nameMatches(name: Name, wanted: string): boolean {
  const cn = nameAttribute(name, CN);
  return (
    canonical(formatName(name)) === canonical(wanted) ||
    (cn !== undefined && cn.toLowerCase() === wanted.toLowerCase())
  );
}

const isThumbprint = (s: string) => /^[0-9a-f]{40}$/i.test(s.replace(/[:\s]/g, ''));

function ekuCheck(
  cert: Certificate,
  c: SelectionCriteria,
  wanted: readonly string[],
): SelectionCheck {
  const eku = extendedKeyUsage(cert);
  if (eku === null)
    return c.allPurpose === false
      ? {
          check: 'eku',
          ok: false,
          detail: 'no EKU extension, and all-purpose certificates are excluded',
        }
      : { check: 'eku', ok: true, detail: 'no EKU extension: all purposes' };
  const hit = eku.find((e) => wanted.includes(e.oid));
  if (hit) return { check: 'eku', ok: true, detail: `EKU ${hit.name}` };
  if (eku.some((e) => e.oid === ANY_EKU))
    return c.anyPurpose === false
      ? {
          check: 'eku',
          ok: false,
          detail: 'anyExtendedKeyUsage, and any-purpose certificates are excluded',
        }
      : { check: 'eku', ok: true, detail: 'EKU anyExtendedKeyUsage' };
  const names = wanted.map((w) => EKU_NAMES[w] ?? w).join(' or ');
  return {
    check: 'eku',
    ok: false,
    detail: `EKU ${eku.map((e) => e.name).join(', ') || '(empty)'}, not ${names}`,
  };
}

function issuerCheck(
  cert: Certificate,
  chain: readonly Certificate[],
  issuers: readonly string[],
): SelectionCheck {
  const cas = chain.slice(1);
  for (const wanted of issuers) {
    if (isThumbprint(wanted)) {
      const t = wanted.replace(/[:\s]/g, '').toLowerCase();
      const ca = cas.find((c) => sha1Thumbprint(c) === t);
      if (ca)
        return { check: 'issuer', ok: true, detail: `chain has ${formatName(ca.subject)} (${t})` };
    } else {
      const ca = cas.find((c) => nameMatches(c.subject, wanted));
      if (ca) return { check: 'issuer', ok: true, detail: `chain has ${formatName(ca.subject)}` };
      if (nameMatches(cert.issuer, wanted))
        return { check: 'issuer', ok: true, detail: `issued by ${formatName(cert.issuer)}` };
    }
  }
  const path = [formatName(cert.issuer), ...cas.slice(1).map((c) => formatName(c.subject))];
  return { check: 'issuer', ok: false, detail: `issuers ${[...new Set(path)].join(' → ')}` };
}

function templateCheck(cert: Certificate, wanted: string): SelectionCheck {
  const t = certificateTemplate(cert);
  const ok =
    (t?.name !== undefined && t.name.toLowerCase() === wanted.toLowerCase()) || t?.oid === wanted;
  const has = t ? [t.name, t.oid].filter(Boolean).join(' / ') : 'no template extension';
  return { check: 'template', ok, detail: ok ? `template ${has}` : has };
}

/** Windows' order of preference among matches (see the module comment). */
function preferred(a: Certificate, b: Certificate): number {
  return (
    b.notBefore.getTime() - a.notBefore.getTime() ||
    b.notAfter.getTime() - a.notAfter.getTime() ||
    sha1Thumbprint(a).localeCompare(sha1Thumbprint(b))
  );
}

/** Applies the criteria to the store (see the module comment). */
export function selectCertificate(agent: DeviceAgent, c: SelectionCriteria = {}): Selection {
  const scope = c.scope ?? 'device';
  const store = c.store ?? 'My';
  const at = c.at ?? new Date();
  const ekus = (c.ekus ?? []).map(ekuOid);
  const stores = agent.certificates;
  const judged = stores.list(scope, store).map((entry: CertificateEntry) => {
    const cert = stores.certificate(entry);
    const checks: SelectionCheck[] = [];
    const valid = cert.notBefore <= at && at <= cert.notAfter;
    checks.push({
      check: 'validity',
      ok: valid,
      detail: valid
        ? `valid until ${cert.notAfter.toISOString()}`
        : cert.notAfter < at
          ? `expired ${cert.notAfter.toISOString()}`
          : `not valid before ${cert.notBefore.toISOString()}`,
    });
    const key = entry.keyId !== undefined ? agent.keys.find(entry.keyId) : undefined;
    checks.push(
      key
        ? { check: 'private-key', ok: true, detail: `private key (${key.provider})` }
        : { check: 'private-key', ok: false, detail: 'no private key on the device' },
    );
    if (ekus.length) checks.push(ekuCheck(cert, c, ekus));
    if (c.issuers?.length)
      checks.push(issuerCheck(cert, judgeOnDevice(stores, cert, { at }).chain, c.issuers));
    if (c.template !== undefined) checks.push(templateCheck(cert, c.template));
    const candidate: SelectionCandidate = {
      thumbprint: entry.thumbprint,
      subject: formatName(cert.subject),
      issuer: formatName(cert.issuer),
      notBefore: cert.notBefore.toISOString(),
      notAfter: cert.notAfter.toISOString(),
      matches: checks.every((k) => k.ok),
      checks,
    };
    return { cert, candidate };
  });
  const ordered = judged.toSorted(
    (a, b) =>
      Number(b.candidate.matches) - Number(a.candidate.matches) || preferred(a.cert, b.cert),
  );
  const matches = ordered.filter((j) => j.candidate.matches).map((j) => j.candidate);
  const chosen = matches[0]?.thumbprint ?? null;
  return {
    scope,
    store,
    candidates: ordered.map((j) => j.candidate),
    chosen,
    ...(matches.length > 1
      ? {
          warning: `${matches.length} certificates match these criteria, and Windows does not say which one it uses: ${matches.map((m) => `${m.subject} (${m.thumbprint})`).join('; ')}. Narrow the profile's filter (issuer, EKU, template) so that exactly one matches.`,
        }
      : {}),
  };
}
