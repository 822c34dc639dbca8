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

function line(label: string, value: string | undefined | null): string {
  return value ? `  ${`${label}:`.padEnd(24)}${value}\n` : '';
}

export function renderCertificate(
  c: InspectionReport['certificates'][number],
  index: number,
  total: number,
  now = new Date(),
): string {
  let out = `Certificate ${index + 1} of ${total}: ${ROLE[c.role]}\n`;
  out += line('Subject', c.subject || '(empty)');
  out += line('Issuer', c.issuer || '(empty)');
  out += line('Friendly name', c.friendlyName);
  out += line('Serial number', c.serialNumber);
  out += line('Validity', validity(c, now));
  out += line('SHA-1 thumbprint', c.sha1);
  out += line('SHA-256 thumbprint', c.sha256);
  out += line('Public key', keyText(c.publicKey));
  out += line('Signature algorithm', c.signatureAlgorithm);
  out += line('Key usage', c.keyUsage?.join(', '));
  out += line(
    'Extended key usage',
    c.extendedKeyUsage?.map((e) => (e.name === e.oid ? e.oid : `${e.name} (${e.oid})`)).join(', '),
  );
  out += line('Subject alt names', c.subjectAltNames.map((s) => `${s.type}:${s.value}`).join(', '));
  out += line(
    'Basic constraints',
    c.basicConstraints &&
      `CA:${c.basicConstraints.ca ? 'TRUE' : 'FALSE'}${c.basicConstraints.pathLen !== null ? `, pathlen:${c.basicConstraints.pathLen}` : ''}`,
  );
  out += line('Subject key id', c.subjectKeyIdentifier);
  out += line('Authority key id', c.authorityKeyIdentifier);
  out += line('CRL distribution', c.crlDistributionPoints.join(', '));
  out += line('OCSP', c.authorityInfoAccess.ocsp.join(', '));
  out += line('CA issuers', c.authorityInfoAccess.caIssuers.join(', '));
  out += line('Policies', c.certificatePolicies.map((p) => p.name ?? p.oid).join(', '));
  out += line('Template', c.template);
  out += line('Private key', c.hasPrivateKey ? 'present in this file' : null);
  out += line('Trust', c.trust?.summary);
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
      line(
        'Integrity',
        `${r.pkcs12.integrity.mac}${r.pkcs12.integrity.iterations ? `, ${r.pkcs12.integrity.iterations} iterations` : ''}`,
      ) + line('Encryption', r.pkcs12.encryption.join(', ')),
    );
  }
  r.certificates.forEach((c, i) => parts.push(renderCertificate(c, i, r.certificates.length, now)));
  r.privateKeys.forEach((k, i) => {
    let out = `Private key ${i + 1} of ${r.privateKeys.length}\n`;
    out += line('Type', keyText(k));
    out += line('Friendly name', k.friendlyName);
    out += line(
      'Certificate',
      k.matchesCertificate ? `matches ${k.certificateSha1}` : 'no certificate in this file matches',
    );
    parts.push(out);
  });
  r.certificateRequests.forEach((q, i) => {
    let out = `Certificate request ${i + 1} of ${r.certificateRequests.length}\n`;
    out += line('Subject', q.subject || '(empty)');
    out += line('Public key', keyText(q.publicKey));
    out += line('Signature algorithm', q.signatureAlgorithm);
    out += line('Challenge password', q.hasChallengePassword ? 'present (not shown)' : null);
    out += line(
      'Subject alt names',
      q.subjectAltNames.map((s) => `${s.type}:${s.value}`).join(', '),
    );
    out += line('Requested extensions', q.requestedExtensions.map((e) => e.oid).join(', '));
    parts.push(out);
  });
  for (const n of r.notes) parts.push(`Note: ${n}\n`);
  return parts.join('\n');
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
