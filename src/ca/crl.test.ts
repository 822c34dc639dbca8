import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseCsr } from '../pki/csr.ts';
import * as der from '../pki/der.ts';
import { encodePem } from '../pki/pem.ts';
import { inspectCertificate } from '../pki/x509.ts';
import { run, tempDir } from '../testing/tools.ts';
import { createAuthority } from './authority.ts';
import { buildCrl, describeCrl, parseCrl } from './crl.ts';
import { checkSignedStructure } from '../pki/chain.ts';
import { issue, randomSerial, serialHex } from './issuer.ts';
import { DEFAULT_PROFILE } from './profile.ts';

const NOW = new Date('2026-05-01T10:00:00Z');
const AT = String(NOW.getTime() / 1000 + 3600);

function csr(cn: string) {
  const dir = tempDir();
  run('openssl', [
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    join(dir, 'k.pem'),
    '-subj',
    `/CN=${cn}`,
    '-outform',
    'DER',
    '-out',
    join(dir, 'r.der'),
  ]);
  return parseCsr(
    new Uint8Array(
      run('openssl', ['req', '-inform', 'DER', '-in', join(dir, 'r.der'), '-outform', 'DER']),
    ),
  );
}

/** openssl verify with -crl_check; returns its combined output and exit status. */
function verifyWithCrl(dir: string, leaf: string): { status: number; out: string } {
  try {
    const out = execFileSync(
      'openssl',
      [
        'verify',
        '-attime',
        AT,
        '-crl_check',
        '-CAfile',
        join(dir, 'root.pem'),
        '-untrusted',
        join(dir, 'issuing.pem'),
        '-CRLfile',
        join(dir, 'crl.pem'),
        join(dir, leaf),
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    ).toString();
    return { status: 0, out };
  } catch (e) {
    const err = e as { status: number; stdout: Buffer; stderr: Buffer };
    return { status: err.status, out: `${err.stdout.toString()}${err.stderr.toString()}` };
  }
}

describe('buildCrl', () => {
  for (const keyType of ['rsa', 'ec'] as const) {
    it(`${keyType}: openssl accepts the CRL signature and -crl_check rejects exactly the revoked leaf`, async () => {
      const ca = await createAuthority({
        keyType,
        rootSubject: 'CN=Root',
        issuingSubject: 'CN=Issuing',
        now: NOW,
      });
      const revoked = await issue(
        { csr: csr('revoked'), profile: DEFAULT_PROFILE, now: NOW },
        ca,
        randomSerial(),
      );
      const good = await issue(
        { csr: csr('good'), profile: DEFAULT_PROFILE, now: NOW },
        ca,
        randomSerial(),
      );
      const crlDer = await buildCrl({
        issuer: ca.issuing,
        thisUpdate: NOW,
        nextUpdate: new Date(NOW.getTime() + 7 * 86_400_000),
        crlNumber: 42n,
        revoked: [
          { serial: `00${serialHex(revoked.serial)}`, revokedAt: NOW, reason: 1 },
          { serial: 'abcdef', revokedAt: NOW, reason: 0 },
        ],
      });
      // Read back by our own parser: the same fields, and a signature the issuer's key verifies.
      const parsed = parseCrl(crlDer);
      assert.equal(parsed.crlNumber, 42n);
      assert.equal(parsed.thisUpdate.getTime(), NOW.getTime());
      assert.equal(parsed.nextUpdate?.getTime(), NOW.getTime() + 7 * 86_400_000);
      assert.deepEqual(
        parsed.revoked.map((r) => [r.serial, r.reason]),
        [
          [serialHex(revoked.serial).replace(/^(00)+(?=..)/, ''), 1],
          ['abcdef', 0],
        ],
      );
      assert.ok(checkSignedStructure(parsed, ca.issuing.certificate.spki).ok);
      assert.equal(checkSignedStructure(parsed, ca.root.certificate.spki).ok, false);
      const dir = tempDir();
      writeFileSync(join(dir, 'root.pem'), encodePem('CERTIFICATE', ca.root.certificate.der));
      writeFileSync(join(dir, 'issuing.pem'), encodePem('CERTIFICATE', ca.issuing.certificate.der));
      writeFileSync(
        join(dir, 'chain.pem'),
        encodePem('CERTIFICATE', ca.issuing.certificate.der) +
          encodePem('CERTIFICATE', ca.root.certificate.der),
      );
      writeFileSync(join(dir, 'crl.der'), crlDer);
      writeFileSync(join(dir, 'crl.pem'), encodePem('X509 CRL', crlDer));
      writeFileSync(join(dir, 'revoked.pem'), encodePem('CERTIFICATE', revoked.der));
      writeFileSync(join(dir, 'good.pem'), encodePem('CERTIFICATE', good.der));

      const text = execFileSync(
        'openssl',
        [
          'crl',
          '-inform',
          'DER',
          '-in',
          join(dir, 'crl.der'),
          '-CAfile',
          join(dir, 'chain.pem'),
          '-noout',
          '-text',
        ],
        { stdio: ['pipe', 'pipe', 'pipe'] },
      );
      const all = text.toString();
      assert.deepEqual(describeCrl(crlDer), {
        issuer: 'CN=Issuing',
        thisUpdate: NOW,
        nextUpdate: new Date(NOW.getTime() + 7 * 86_400_000),
        number: 42n,
        revoked: [serialHex(revoked.serial).replace(/^(00)+/, ''), 'abcdef'],
      });
      assert.match(all, /Version 2 \(0x1\)/);
      assert.match(all, /Issuer: CN = Issuing/);
      assert.match(all, /Last Update: May  1 10:00:00 2026 GMT/);
      assert.match(all, /Next Update: May  8 10:00:00 2026 GMT/);
      assert.match(all, /X509v3 CRL Number: \n\s+42/);
      const ski = inspectCertificate(ca.issuing.certificate)
        .subjectKeyIdentifier!.toUpperCase()
        .match(/../g)!
        .join(':');
      assert.match(all, new RegExp(`X509v3 Authority Key Identifier: \\n\\s+${ski}`));
      assert.match(
        all,
        new RegExp(
          `Serial Number: ${serialHex(revoked.serial).toUpperCase()}\\n\\s+Revocation Date: May  1 10:00:00 2026 GMT\\n\\s+CRL entry extensions:\\n\\s+X509v3 CRL Reason Code: \\n\\s+Key Compromise`,
        ),
      );
      assert.match(
        all,
        /Serial Number: ABCDEF\n\s+Revocation Date: May {2}1 10:00:00 2026 GMT\n\s+Signature Algorithm/,
      );
      // `openssl crl -CAfile` prints "verify OK" on stderr; rerun capturing it.
      const verify = execFileSync(
        'bash',
        ['-c', `openssl crl -inform DER -in crl.der -CAfile chain.pem -noout 2>&1`],
        { cwd: dir },
      ).toString();
      assert.match(verify, /verify OK/);

      assert.equal(verifyWithCrl(dir, 'good.pem').status, 0);
      const r = verifyWithCrl(dir, 'revoked.pem');
      assert.notEqual(r.status, 0);
      assert.match(r.out, /certificate revoked/);
    });
  }

  it('omits revokedCertificates when the list is empty and refuses bad input', async () => {
    const ca = await createAuthority({
      keyType: 'ec',
      rootSubject: 'CN=R',
      issuingSubject: 'CN=I',
      now: NOW,
    });
    const base = {
      issuer: ca.issuing,
      thisUpdate: NOW,
      nextUpdate: new Date(NOW.getTime() + 1000),
      crlNumber: 1n,
    };
    const empty = await buildCrl({ ...base, revoked: [] });
    const tbs = der.seq(der.seq(der.decode(empty), 'crl')[0], 'tbs');
    // version, signature, issuer, thisUpdate, nextUpdate, [0] extensions
    assert.equal(tbs.length, 6);
    assert.equal(tbs[5]!.tag, der.ctx(0, true));
    assert.deepEqual(describeCrl(empty), {
      issuer: 'CN=I',
      thisUpdate: NOW,
      nextUpdate: base.nextUpdate,
      number: 1n,
      revoked: [],
    });
    assert.throws(
      () => describeCrl(ca.issuing.certificate.der.subarray(0, 40)),
      /truncated|malformed/i,
    );
    await assert.rejects(
      buildCrl({ ...base, revoked: [{ serial: 'xyz', revokedAt: NOW, reason: 0 }] }),
      /bad serial/,
    );
    await assert.rejects(
      buildCrl({ ...base, revoked: [{ serial: '01', revokedAt: NOW, reason: 7 }] }),
      /CRLReason 7/,
    );
    await assert.rejects(buildCrl({ ...base, crlNumber: -1n, revoked: [] }), /cRLNumber/);
  });
});
