/**
 * Installation planning over a small PKI generated with `openssl` at test time: a PEM bundle
 * root + intermediate + leaf with the leaf's key, a second leaf and key, a correspondent's
 * certificate without a key, and a stray key.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { run, tempDir } from '../testing/tools.ts';
import { planInstallation, type InstallationPlan } from './install-plan.ts';
import { parsePrivateKeyPem, type PrivateKey } from './keys.ts';
import { parseCertificate, sha1Thumbprint, type Certificate } from './x509.ts';

const EXTENSIONS = `
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth,emailProtection
`;

interface Fixture {
  readonly root: Certificate;
  readonly inter: Certificate;
  readonly leaf: Certificate;
  readonly leaf2: Certificate;
  readonly other: Certificate;
  readonly leafKey: PrivateKey;
  readonly leaf2Key: PrivateKey;
  readonly strayKey: PrivateKey;
  /** root + intermediate + leaf, in one PEM file, as a server would send a chain. */
  readonly bundle: Certificate[];
}

function buildFixture(): Fixture {
  const dir = tempDir('certpost-plan-');
  writeFileSync(join(dir, 'ext.cnf'), EXTENSIONS);
  const ssl = (...args: string[]) => run('openssl', args, { cwd: dir });
  let serial = 1;
  const issue = (name: string, ext: string, issuer: string | null) => {
    ssl(
      'genpkey',
      '-algorithm',
      'EC',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-out',
      `${name}.key`,
    );
    ssl('req', '-new', '-key', `${name}.key`, '-subj', `/CN=${name}`, '-out', `${name}.csr`);
    const by = issuer
      ? ['-CA', `${issuer}.pem`, '-CAkey', `${issuer}.key`]
      : ['-signkey', `${name}.key`];
    ssl('x509', '-req', '-in', `${name}.csr`, ...by, '-sha256', '-days', '30', '-set_serial',
      String(serial++), '-extfile', 'ext.cnf', '-extensions', ext, '-out', `${name}.pem`); // prettier-ignore
  };
  issue('root', 'ca', null);
  issue('inter', 'ca', 'root');
  issue('leaf', 'leaf', 'inter');
  issue('leaf2', 'leaf', 'inter');
  issue('other', 'leaf', 'inter');
  ssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384', '-out', 'stray.key');
  const text = (f: string) => readFileSync(join(dir, f), 'utf8');
  const cert = (n: string) => splitPem(text(`${n}.pem`))[0]!;
  return {
    root: cert('root'),
    inter: cert('inter'),
    leaf: cert('leaf'),
    leaf2: cert('leaf2'),
    other: cert('other'),
    leafKey: parsePrivateKeyPem(text('leaf.key')),
    leaf2Key: parsePrivateKeyPem(text('leaf2.key')),
    strayKey: parsePrivateKeyPem(text('stray.key')),
    bundle: splitPem(text('root.pem') + text('inter.pem') + text('leaf.pem')),
  };
}

function splitPem(pem: string): Certificate[] {
  const blocks = pem.matchAll(/-----BEGIN CERTIFICATE-----([^-]+)-----END CERTIFICATE-----/g);
  return [...blocks].map((m) =>
    parseCertificate(new Uint8Array(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'))),
  );
}

/** Store, scope and key presence per entry, by CN, for compact assertions. */
function summary(plan: InstallationPlan): string[] {
  return plan.entries.map(
    (e) =>
      `${e.certificate.subject.rdns[0]![0]!.value} → ${e.scope}/${e.store}${e.key ? ' +key' : ''}`,
  );
}

describe('planInstallation', () => {
  let f: Fixture;
  before(() => {
    f = buildFixture();
  });

  it('splits a root + intermediate + leaf bundle with the leaf key into Root, CA and My', () => {
    assert.equal(f.bundle.length, 3);
    const plan = planInstallation({ certificates: f.bundle, keys: [f.leafKey] });
    assert.deepEqual(summary(plan), [
      'root → device/Root',
      'inter → device/CA',
      'leaf → device/My +key',
    ]);
    assert.equal(plan.entries[2]!.key, f.leafKey);
    assert.equal(plan.entries[0]!.reason, 'self-signed CA: trusted root');
    assert.match(plan.entries[1]!.reason, /intermediate/);
    assert.match(plan.entries[2]!.reason, /private key/);
    assert.equal(plan.entries[0]!.sha1, sha1Thumbprint(f.root));
    assert.deepEqual(plan.unmatchedKeys, []);
    assert.deepEqual(plan.warnings, []);
  });

  it('matches keys by public key, not by order', () => {
    const plan = planInstallation({
      certificates: [f.leaf, f.leaf2],
      keys: [f.leaf2Key, f.leafKey],
    });
    assert.equal(plan.entries[0]!.key, f.leafKey);
    assert.equal(plan.entries[1]!.key, f.leaf2Key);
  });

  it("files an end-entity certificate without its key as someone else's (TrustedPeople)", () => {
    const plan = planInstallation({ certificates: [f.other] });
    assert.deepEqual(summary(plan), ['other → device/TrustedPeople']);
    assert.match(plan.entries[0]!.reason, /someone else's certificate/);
  });

  it('lists a key that matches no certificate, with a warning', () => {
    const plan = planInstallation({ certificates: [f.leaf], keys: [f.strayKey, f.leafKey] });
    assert.deepEqual(summary(plan), ['leaf → device/My +key']);
    assert.deepEqual(plan.unmatchedKeys, [f.strayKey]);
    assert.equal(plan.warnings.length, 1);
    assert.match(plan.warnings[0]!, /private key \(ec P-384\) matches none of the certificates/);
  });

  it('collapses duplicate certificates (same SHA-1) into one entry', () => {
    const again = parseCertificate(Uint8Array.from(f.inter.der));
    const plan = planInstallation({ certificates: [f.inter, f.root, again, f.root] });
    assert.deepEqual(summary(plan), ['inter → device/CA', 'root → device/Root']);
  });

  it('plans a root for the device Root store in user scope, with a warning', () => {
    const plan = planInstallation({ certificates: f.bundle, keys: [f.leafKey] }, { scope: 'user' });
    assert.deepEqual(summary(plan), [
      'root → device/Root',
      'inter → user/CA',
      'leaf → user/My +key',
    ]);
    assert.equal(plan.warnings.length, 1);
    assert.match(plan.warnings[0]!, /"CN=root" is a root: Windows has no user-scope Root store/);
  });

  it('honours a forced store and warns when a key-bearing certificate leaves My', () => {
    const plan = planInstallation(
      { certificates: [f.root, f.leaf], keys: [f.leafKey] },
      { store: 'TrustedPublisher' },
    );
    assert.deepEqual(summary(plan), [
      'root → device/TrustedPublisher',
      'leaf → device/TrustedPublisher +key',
    ]);
    assert.match(plan.entries[0]!.reason, /^store TrustedPublisher requested \(would be Root/);
    assert.equal(plan.warnings.length, 1);
    assert.match(
      plan.warnings[0]!,
      /"CN=leaf" has its private key but is placed in TrustedPublisher/,
    );
  });

  it('keeps the automatic reason when the forced store is the automatic one', () => {
    const plan = planInstallation({ certificates: [f.inter] }, { store: 'CA' });
    assert.deepEqual(summary(plan), ['inter → device/CA']);
    assert.match(plan.entries[0]!.reason, /^CA issued by another CA/);
  });
});
