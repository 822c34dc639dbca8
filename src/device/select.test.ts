/**
 * Certificate selection (design.md §1, the seed's known issue): a device with several client
 * certificates, and filters by EKU (with the any-purpose and all-purpose rules), issuer (name
 * or thumbprint, anywhere in the chain), template (v1 name or v2 OID), validity and private key.
 * The identities are issued by the openssl-made PKI's CAs through our CA encoder, with chosen
 * dates, so the preference order is known.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { makeTestPki, type TestPki } from '../testing/test-pki.ts';
import { tempDir } from '../testing/tools.ts';
import { DeviceAgent } from './agent.ts';
import { loadInstallInput, type LoadedInput } from './install-input.ts';
import { applyInstall, reviewInstall } from './installer.ts';
import { selectCertificate, type Selection } from './select.ts';
import { clientIdentityPem, type IdentityOptions } from './testing.ts';

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const EMAIL = '1.3.6.1.5.5.7.3.4';
const ANY = '2.5.29.37.0';
const WIFI_V2 = '1.3.6.1.4.1.311.21.8.1.2';
const DAY = 86_400_000;
const now = Date.now();
const ago = (days: number) => new Date(now - days * DAY);

let pki: TestPki;
let agent: DeviceAgent;

const pem = (sources: Record<string, string>): LoadedInput => ({
  sources: Object.entries(sources).map(([name, text]) => ({
    name,
    bytes: new TextEncoder().encode(text),
  })),
  warnings: [],
});

before(async () => {
  pki = makeTestPki();
  agent = await DeviceAgent.open(tempDir());
  const load = (f: string) =>
    loadInstallInput(pki.path(f), { trustedRootsPem: () => agent.certificates.trustedRootsPem() });
  const chain = await Promise.all(['root.der', 'inter.pem', 'other-root.pem'].map(load));
  await applyInstall(agent, await reviewInstall(agent, chain), { rootsConfirmed: true });
  const by = (ca: string) => ({
    der: pki.bytes(`${ca}.der`),
    keyPem: readFileSync(pki.path(`${ca}.key`), 'utf8'),
  });
  const identity = (ca: string, o: Omit<IdentityOptions, 'notAfter'> & { notAfter?: Date }) =>
    clientIdentityPem(by(ca), { notAfter: new Date(now + 300 * DAY), ...o });
  const identities = pem({
    'wifi-old': await identity('inter', {
      cn: 'wifi-old',
      notBefore: ago(30),
      ekus: [CLIENT_AUTH],
      template: { name: 'WiFiUser' },
    }),
    'wifi-new': await identity('inter', {
      cn: 'wifi-new',
      notBefore: ago(1),
      ekus: [CLIENT_AUTH],
      template: { name: 'WiFiUser', oid: WIFI_V2 },
    }),
    vpn: await identity('other-root', {
      cn: 'vpn',
      notBefore: ago(5),
      ekus: [CLIENT_AUTH],
      template: { oid: '1.3.6.1.4.1.311.21.8.9.9' },
    }),
    mail: await identity('inter', { cn: 'mail', notBefore: ago(2), ekus: [EMAIL] }),
    any: await identity('inter', { cn: 'any', notBefore: ago(10), ekus: [ANY] }),
    all: await identity('inter', { cn: 'all', notBefore: ago(20), ekus: null }),
    expired: await identity('inter', {
      cn: 'expired',
      notBefore: ago(60),
      notAfter: ago(3),
      ekus: [CLIENT_AUTH],
    }),
  });
  await applyInstall(agent, await reviewInstall(agent, [identities]), {
    rootsConfirmed: true,
    allowUntrusted: true, // the expired one
  });
  // A client certificate without its key, filed in My by hand.
  const alone = await reviewInstall(agent, [await load('alice.pem')], { store: 'My' });
  await applyInstall(agent, alone, { rootsConfirmed: true });
});

after(async () => {
  await agent.close();
});

const names = (s: Selection) => s.candidates.filter((c) => c.matches).map((c) => cn(c.subject));
const cn = (subject: string) => /CN=([^,]+)/.exec(subject)![1]!;
const chosen = (s: Selection) => cn(s.candidates.find((c) => c.thumbprint === s.chosen)!.subject);
const why = (s: Selection, name: string) =>
  s.candidates
    .find((c) => cn(c.subject) === name)!
    .checks.map((k) => `${k.ok ? '+' : '-'}${k.check}: ${k.detail}`);

describe('selectCertificate', () => {
  it('a loose EKU filter matches several: the most recently issued is chosen, with a warning', () => {
    const s = selectCertificate(agent, { ekus: ['clientAuth'] });
    assert.deepEqual(names(s), ['wifi-new', 'vpn', 'any', 'all', 'wifi-old']);
    assert.equal(chosen(s), 'wifi-new');
    assert.match(
      s.warning!,
      /^5 certificates match these criteria, and Windows does not say which/,
    );
    assert.match(s.warning!, /CN=wifi-old,O=certpost tests \([0-9A-F]{40}\)/);
    assert.deepEqual(why(s, 'any'), [
      `+validity: valid until ${new Date(now + 300 * DAY).toISOString().slice(0, 19)}.000Z`,
      '+private-key: private key (software)',
      '+eku: EKU anyExtendedKeyUsage',
    ]);
    assert.deepEqual(why(s, 'all').slice(2), ['+eku: no EKU extension: all purposes']);
    assert.deepEqual(why(s, 'mail').slice(2), ['-eku: EKU emailProtection, not clientAuth']);
    assert.match(why(s, 'expired')[0]!, /^-validity: expired /);
    assert.deepEqual(why(s, 'alice').slice(1), [
      '-private-key: no private key on the device',
      '+eku: EKU clientAuth',
    ]);
  });

  it('any-purpose and all-purpose certificates can be excluded, as the EAP filter allows', () => {
    const s = selectCertificate(agent, {
      ekus: [CLIENT_AUTH],
      anyPurpose: false,
      allPurpose: false,
    });
    assert.deepEqual(names(s), ['wifi-new', 'vpn', 'wifi-old']);
    assert.deepEqual(why(s, 'any').slice(2), [
      '-eku: anyExtendedKeyUsage, and any-purpose certificates are excluded',
    ]);
  });

  it('issuer by name or by thumbprint, anywhere in the chain', () => {
    const byName = selectCertificate(agent, {
      ekus: ['clientAuth'],
      issuers: ['CN=inter, O=certpost tests'],
    });
    assert.deepEqual(names(byName), ['wifi-new', 'any', 'all', 'wifi-old']);
    const byRoot = selectCertificate(agent, { ekus: ['clientAuth'], issuers: [pki.sha1('root')] });
    assert.deepEqual(names(byRoot), names(byName));
    assert.match(why(byRoot, 'wifi-new')[3]!, /^\+issuer: chain has CN=root,O=certpost tests/);
    assert.match(why(byRoot, 'vpn')[3]!, /^-issuer: issuers CN=other-root,O=certpost tests$/);
    const one = selectCertificate(agent, { ekus: ['clientAuth'], issuers: ['other-root'] });
    assert.deepEqual(names(one), ['vpn']);
    assert.equal(one.warning, undefined);
  });

  it('template by v1 name (any case) or v2 OID', () => {
    const byName = selectCertificate(agent, { ekus: ['clientAuth'], template: 'wifiuser' });
    assert.deepEqual(names(byName), ['wifi-new', 'wifi-old']);
    assert.ok(byName.warning);
    const byOid = selectCertificate(agent, { template: WIFI_V2 });
    assert.deepEqual(names(byOid), ['wifi-new']);
    assert.equal(byOid.warning, undefined);
    assert.deepEqual(why(byOid, 'all').slice(2), ['-template: no template extension']);
    assert.deepEqual(why(byOid, 'vpn').slice(2), ['-template: 1.3.6.1.4.1.311.21.8.9.9']);
  });

  it('another store or scope, and an unknown EKU name', () => {
    const user = selectCertificate(agent, { scope: 'user', ekus: ['clientAuth'] });
    assert.equal(user.chosen, null);
    assert.deepEqual(user.candidates, []);
    assert.throws(() => selectCertificate(agent, { ekus: ['wifi'] }), {
      code: 'ERR_DEVICE_BAD_PARAMETER',
      message: /unknown EKU "wifi": give an OID or one of anyExtendedKeyUsage, serverAuth/,
    });
  });
});
