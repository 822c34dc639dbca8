/** Human rendering of an {@link InspectionReport}, in the spirit of `certutil -dump`. */
import type { InspectionReport } from '../pki/inspect.ts';
import type { CertificateInfo, PublicKeyInfo } from '../pki/x509.ts';

const ROLE = {
  root: 'root CA (self-signed)',
  intermediate: 'intermediate CA',
  'end-entity': 'end entity',
} as const;

function keyText(k: PublicKeyInfo): string {
  const type =
    { rsa: 'RSA', ec: 'EC', ed25519: 'Ed25519', ed448: 'Ed448', dsa: 'DSA', 'rsa-pss': 'RSA-PSS' }[
      k.type
    ] ?? k.type;
  if (k.curve && k.type === 'ec') return `${type} ${k.curve}`;
  return k.bits ? `${type} ${k.bits} bits` : type;
}

function validity(c: CertificateInfo, now: Date): string {
  const from = new Date(c.notBefore);
  const to = new Date(c.notAfter);
  const day = 86_400_000;
  const state =
    now < from
      ? `not valid yet (starts in ${Math.ceil((from.getTime() - now.getTime()) / day)} days)`
      : now > to
        ? `EXPIRED ${Math.floor((now.getTime() - to.getTime()) / day)} days ago`
        : `valid, ${Math.floor((to.getTime() - now.getTime()) / day)} days left`;
  return `${fmt(from)} to ${fmt(to)} (${state})`;
}

const fmt = (d: Date) =>
  d
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC');

/** One `Label:  value` line of a report; nothing when there is no value. */
export function field(label: string, value: string | undefined | null): string {
  return value ? `  ${`${label}:`.padEnd(24)}${value}\n` : '';
}

export function renderCertificate(
  c: InspectionReport['certificates'][number],
  index: number,
  total: number,
  now = new Date(),
): string {
  let out = `Certificate ${index + 1} of ${total}: ${ROLE[c.role]}\n`;
  out += field('Subject', c.subject || '(empty)');
  out += field('Issuer', c.issuer || '(empty)');
  out += field('Friendly name', c.friendlyName);
  out += field('Serial number', c.serialNumber);
  out += field('Validity', validity(c, now));
  out += field('SHA-1 thumbprint', c.sha1);
  out += field('SHA-256 thumbprint', c.sha256);
  out += field('Public key', keyText(c.publicKey));
  out += field('Signature algorithm', c.signatureAlgorithm);
  out += field('Key usage', c.keyUsage?.join(', '));
  out += field(
    'Extended key usage',
    c.extendedKeyUsage?.map((e) => (e.name === e.oid ? e.oid : `${e.name} (${e.oid})`)).join(', '),
  );
  out += field(
    'Subject alt names',
    c.subjectAltNames.map((s) => `${s.type}:${s.value}`).join(', '),
  );
  out += field(
    'Basic constraints',
    c.basicConstraints &&
      `CA:${c.basicConstraints.ca ? 'TRUE' : 'FALSE'}${c.basicConstraints.pathLen !== null ? `, pathlen:${c.basicConstraints.pathLen}` : ''}`,
  );
  out += field('Subject key id', c.subjectKeyIdentifier);
  out += field('Authority key id', c.authorityKeyIdentifier);
  out += field('CRL distribution', c.crlDistributionPoints.join(', '));
  out += field('OCSP', c.authorityInfoAccess.ocsp.join(', '));
  out += field('CA issuers', c.authorityInfoAccess.caIssuers.join(', '));
  out += field('Policies', c.certificatePolicies.map((p) => p.name ?? p.oid).join(', '));
  out += field('Template', c.template);
  out += field('Private key', c.hasPrivateKey ? 'present in this file' : null);
  out += field('Trust', c.trust?.summary);
  return out;
}

export function renderReport(r: InspectionReport, source: string, now = new Date()): string {
  const parts: string[] = [];
  const counts = [
    plural(r.certificates.length, 'certificate'),
    r.privateKeys.length ? plural(r.privateKeys.length, 'private key') : '',
    r.certificateRequests.length ? plural(r.certificateRequests.length, 'certificate request') : '',
  ].filter(Boolean);
  parts.push(`${source}: ${r.format.toUpperCase()} (${r.encoding}), ${counts.join(', ')}\n`);
  if (r.pkcs12) {
    parts.push(
      field(
        'Integrity',
        `${r.pkcs12.integrity.mac}${r.pkcs12.integrity.iterations ? `, ${r.pkcs12.integrity.iterations} iterations` : ''}`,
      ) + field('Encryption', r.pkcs12.encryption.join(', ')),
    );
  }
  r.certificates.forEach((c, i) => parts.push(renderCertificate(c, i, r.certificates.length, now)));
  r.privateKeys.forEach((k, i) => {
    let out = `Private key ${i + 1} of ${r.privateKeys.length}\n`;
    out += field('Type', keyText(k));
    out += field('Friendly name', k.friendlyName);
    out += field(
      'Certificate',
      k.matchesCertificate ? `matches ${k.certificateSha1}` : 'no certificate in this file matches',
    );
    parts.push(out);
  });
  r.certificateRequests.forEach((q, i) => {
    let out = `Certificate request ${i + 1} of ${r.certificateRequests.length}\n`;
    out += field('Subject', q.subject || '(empty)');
    out += field('Public key', keyText(q.publicKey));
    out += field('Signature algorithm', q.signatureAlgorithm);
    out += field('Challenge password', q.hasChallengePassword ? 'present (not shown)' : null);
    out += field(
      'Subject alt names',
      q.subjectAltNames.map((s) => `${s.type}:${s.value}`).join(', '),
    );
    out += field('Requested extensions', q.requestedExtensions.map((e) => e.oid).join(', '));
    parts.push(out);
  });
  for (const n of r.notes) parts.push(`Note: ${n}\n`);
  return parts.join('\n');
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
