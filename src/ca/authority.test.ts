import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isPkiError } from '../pki/errors.ts';
import { signWith, spkiOf, type ExternalKey, type PrivateKeyRef } from '../pki/key-ref.ts';
import { keyMatchesCertificate } from '../pki/keys.ts';
import { encodePem } from '../pki/pem.ts';
import { verifySignature } from '../pki/chain.ts';
import { inspectCertificate, type Certificate } from '../pki/x509.ts';
import { opensslCaHierarchy, run, tempDir } from '../testing/tools.ts';
import {
  AUTHORITY_FILES,
  createAuthority,
  importAuthority,
  keySpecOf,
  loadAuthority,
  saveAuthority,
  type CaMaterial,
  type KeySource,
} from './authority.ts';

const NOW = new Date('2026-05-01T10:00:00Z');

/** For CAs whose keys are all in a token: the passphrase must not even be asked for. */
const noPassphrase = () => Promise.reject(new Error('no passphrase is needed'));

/** A software key, for assertions that need KeyObject methods. */
const sw = (k: PrivateKeyRef | undefined) => k as KeyObject;

/**
 * A key that signs through the ExternalKey interface, as a token's does. A stand-in for the
 * pure `ca` tests only: real PKCS#11 keys are tested in hsm/ and cli/hsm.e2e.test.ts.
 */
function externalKey(label: string, type: 'rsa' | 'ec'): ExternalKey {
  const { privateKey, publicKey } =
    type === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    kind: 'external',
    label,
    publicKey,
    sign: async (data, hash) => sign(hash, data, privateKey),
  };
}
const AT = String(NOW.getTime() / 1000 + 3600);

function x509Text(cert: Certificate): string {
  const dir = tempDir();
  writeFileSync(join(dir, 'c.pem'), encodePem('CERTIFICATE', cert.der));
  return run('openssl', ['x509', '-in', join(dir, 'c.pem'), '-noout', '-text']).toString();
}

/** openssl verify of `cert` against the root, with the issuing CA as untrusted intermediate. */
function opensslVerify(ca: CaMaterial, cert: Certificate): void {
  const dir = tempDir();
  writeFileSync(join(dir, 'root.pem'), encodePem('CERTIFICATE', ca.root.certificate.der));
  writeFileSync(join(dir, 'issuing.pem'), encodePem('CERTIFICATE', ca.issuing.certificate.der));
  writeFileSync(join(dir, 'c.pem'), encodePem('CERTIFICATE', cert.der));
  const out = run('openssl', [
    'verify',
    '-attime',
    AT,
    '-CAfile',
    join(dir, 'root.pem'),
    '-untrusted',
    join(dir, 'issuing.pem'),
    join(dir, 'c.pem'),
  ]).toString();
  assert.match(out, /c\.pem: OK/);
}

const rsa = (bits: number) => generateKeyPairSync('rsa', { modulusLength: bits }).privateKey;
const ec = (namedCurve: string) => generateKeyPairSync('ec', { namedCurve }).privateKey;

describe('keySpecOf', () => {
  it('describes a key as it is, so a rollover keeps its size or curve', () => {
    assert.deepEqual(keySpecOf(rsa(1536)), { type: 'rsa', bits: 1536 });
    assert.deepEqual(keySpecOf(rsa(3072)), { type: 'rsa', bits: 3072 });
    assert.deepEqual(keySpecOf(ec('P-384')), { type: 'ec', curve: 'P-384' });
    assert.deepEqual(keySpecOf(ec('P-521')), { type: 'ec', curve: 'P-521' });
  });
});

describe('createAuthority', () => {
  it('RSA: a root and an issuing CA with the SCEP key usages, and no RA', async () => {
    const ca = await createAuthority({
      keyType: 'rsa',
      rootSubject: 'CN=certpost Root CA,O=Example,C=US',
      issuingSubject: 'CN=certpost Issuing CA,O=Example,C=US',
      now: NOW,
    });
    assert.equal(ca.ra, undefined);
    assert.ok(ca.root.key);
    opensslVerify(ca, ca.issuing.certificate);
    const root = x509Text(ca.root.certificate);
    assert.match(root, /Issuer: C = US, O = Example, CN = certpost Root CA/);
    assert.match(root, /X509v3 Basic Constraints: critical\n\s+CA:TRUE\n/);
    assert.match(root, /X509v3 Key Usage: critical\n\s+Certificate Sign, CRL Sign\n/);
    assert.match(root, /X509v3 Subject Key Identifier/);
    assert.match(root, /Public-Key: \(2048 bit\)/);
    const issuing = x509Text(ca.issuing.certificate);
    assert.match(issuing, /X509v3 Basic Constraints: critical\n\s+CA:TRUE, pathlen:0\n/);
    assert.match(
      issuing,
      /X509v3 Key Usage: critical\n\s+Digital Signature, Key Encipherment, Certificate Sign, CRL Sign\n/,
    );
    const info = inspectCertificate(ca.issuing.certificate);
    assert.equal(
      info.authorityKeyIdentifier,
      inspectCertificate(ca.root.certificate).subjectKeyIdentifier,
    );
    assert.equal(info.notAfter, '2031-04-30T10:00:00.000Z'); // 1825 days
    assert.equal(inspectCertificate(ca.root.certificate).role, 'root');
    assert.equal(info.role, 'intermediate');
  });

  it('EC: adds an RSA-2048 RA certificate (digitalSignature + keyEncipherment, no EKU)', async () => {
    const ca = await createAuthority({
      keyType: 'ec',
      curve: 'P-384',
      rootSubject: 'CN=EC Root',
      issuingSubject: 'CN=EC Issuing,O=Example',
      crlUrl: 'http://ca.example/issuing.crl',
      now: NOW,
    });
    assert.ok(ca.ra);
    opensslVerify(ca, ca.ra.certificate);
    const ra = inspectCertificate(ca.ra.certificate);
    assert.deepEqual(ra.publicKey, { type: 'rsa', bits: 2048 });
    assert.deepEqual(ra.keyUsage, ['digitalSignature', 'keyEncipherment']);
    assert.equal(ra.extendedKeyUsage, null);
    assert.equal(ra.subject, 'CN=EC Issuing SCEP RA,O=Example');
    assert.deepEqual(ra.crlDistributionPoints, ['http://ca.example/issuing.crl']);
    assert.equal(ra.notAfter, ca.issuing.certificate.notAfter.toISOString());
    const issuing = inspectCertificate(ca.issuing.certificate);
    assert.equal(issuing.signatureAlgorithm, 'ecdsa-with-SHA384');
    assert.deepEqual(issuing.keyUsage, ['digitalSignature', 'keyCertSign', 'cRLSign']);
  });
});

/** An EC root and issuing CA (with an RSA RA) named R and I, made at NOW. */
const smallEcAuthority = () =>
  createAuthority({ keyType: 'ec', rootSubject: 'CN=R', issuingSubject: 'CN=I', now: NOW });

describe('saveAuthority / loadAuthority', () => {
  it('writes PEM certificates and encrypted PKCS#8 keys (0600) and reads them back', async () => {
    const ca = await smallEcAuthority();
    const dir = join(tempDir(), 'data', 'ca');
    await saveAuthority(dir, ca, 'correct horse');
    assert.deepEqual(readdirSync(dir).toSorted(), [
      'issuing.crt',
      'issuing.key',
      'ra.crt',
      'ra.key',
      'root.crt',
      'root.key',
    ]);
    for (const f of ['root.key', 'issuing.key', 'ra.key']) {
      assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, f);
      const pem = readFileSync(join(dir, f), 'utf8');
      assert.match(pem, /^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/);
      const asn1 = run('openssl', ['asn1parse', '-in', join(dir, f)]).toString();
      assert.match(asn1, /PBES2/);
      assert.match(asn1, /aes-256-cbc/);
      run('openssl', ['pkey', '-in', join(dir, f), '-passin', 'pass:correct horse', '-noout']);
    }
    assert.equal(statSync(join(dir, 'root.crt')).mode & 0o777, 0o644);
    assert.equal(statSync(dir).mode & 0o777, 0o700);

    const loaded = await loadAuthority(dir, 'correct horse');
    assert.deepEqual(loaded.issuing.certificate.der, ca.issuing.certificate.der);
    assert.deepEqual(loaded.root.certificate.der, ca.root.certificate.der);
    assert.deepEqual(loaded.ra?.certificate.der, ca.ra?.certificate.der);
    assert.ok(sw(loaded.issuing.key).equals(sw(ca.issuing.key)));
    assert.ok(sw(loaded.root.key).equals(sw(ca.root.key)));

    // Saving material without an RA removes the stale RA files.
    const { ra: _ra, ...withoutRa } = ca;
    void _ra;
    await saveAuthority(dir, withoutRa, 'correct horse');
    assert.ok(!readdirSync(dir).includes(AUTHORITY_FILES.raKey));
    assert.ok(!readdirSync(dir).some((f) => f.endsWith('.tmp')));
  });

  it('a first save cut short leaves no issuing certificate (no CA), and saving again completes it', async () => {
    const ca = await smallEcAuthority();
    const dir = tempDir();
    mkdirSync(join(dir, AUTHORITY_FILES.raKey)); // the RA key cannot be written: the save fails there
    await assert.rejects(saveAuthority(dir, ca, 'pw'));
    assert.ok(
      existsSync(join(dir, AUTHORITY_FILES.issuingKey)),
      'the save got past the issuing key',
    );
    assert.ok(!existsSync(join(dir, AUTHORITY_FILES.issuingCertificate)));
    rmdirSync(join(dir, AUTHORITY_FILES.raKey));
    await saveAuthority(dir, ca, 'pw');
    const loaded = await loadAuthority(dir, 'pw');
    assert.deepEqual(loaded.issuing.certificate.der, ca.issuing.certificate.der);
    assert.deepEqual(loaded.ra?.certificate.der, ca.ra?.certificate.der);
  });

  it('a wrong passphrase is ERR_PKI_BAD_PASSWORD; an empty one is refused on save', async () => {
    const ca = await smallEcAuthority();
    const dir = tempDir();
    await saveAuthority(dir, ca, 'right');
    await assert.rejects(loadAuthority(dir, 'wrong'), (e) => isPkiError(e, 'ERR_PKI_BAD_PASSWORD'));
    await assert.rejects(saveAuthority(dir, ca, ''), (e) =>
      isPkiError(e, 'ERR_PKI_INVALID_ARGUMENT'),
    );
  });

  it('keys held by a token are saved as references and opened again through openKey', async () => {
    const { keys, asked, dir } = await tokenCa();
    assert.deepEqual(asked.toSorted(), ['issuing ec', 'ra rsa', 'root ec']);
    assert.deepEqual(readdirSync(dir).toSorted(), [
      'issuing.crt',
      'issuing.key-ref',
      'ra.crt',
      'ra.key-ref',
      'root.crt',
      'root.key-ref',
    ]);
    assert.equal(
      readFileSync(join(dir, 'issuing.key-ref'), 'utf8'),
      'pkcs11:token=t;object=issuing\n',
    );
    assert.equal(statSync(join(dir, 'issuing.key-ref')).mode & 0o777, 0o600);

    await assert.rejects(
      loadAuthority(dir, noPassphrase),
      (e) => isPkiError(e, 'ERR_PKI_INVALID_ARGUMENT') && /held by a token/.test(e.message),
    );
    const byRef = new Map(Object.values(keys).map((k) => [k.label, k]));
    const opened: string[] = [];
    const loaded = await loadAuthority(dir, noPassphrase, {
      openKey: async (ref, what) => {
        opened.push(what);
        return byRef.get(ref)!;
      },
    });
    assert.deepEqual(opened.toSorted(), ['RA', 'issuing CA', 'root CA']);
    assert.equal(loaded.issuing.key, keys.issuing);
    assert.equal(loaded.root.key, keys.root);

    // A token key that is not the certificate's is refused.
    await assert.rejects(
      loadAuthority(dir, noPassphrase, { openKey: async () => keys.root }),
      (e) => isPkiError(e, 'ERR_PKI_INVALID_ARGUMENT') && /does not match/.test(e.message),
    );
  });

  it('with defer, a token key is opened when it first signs, and matched to its certificate then', async () => {
    const { keys, dir } = await tokenCa();
    const byRef = new Map(Object.values(keys).map((k) => [k.label, k]));
    const opened: string[] = [];
    let failNext = true;
    const loaded = await loadAuthority(dir, noPassphrase, {
      defer: true,
      openKey: async (ref, what) => {
        opened.push(what);
        if (failNext) {
          failNext = false;
          throw new Error('the token needs a PIN');
        }
        return byRef.get(ref)!;
      },
    });
    assert.deepEqual(opened, [], 'loading opens nothing');
    const issuing = loaded.issuing.key as ExternalKey;
    assert.equal(issuing.label, 'pkcs11:token=t;object=issuing');
    assert.ok(issuing.publicKey.equals(keys.issuing.publicKey));
    assert.equal(typeof (loaded.ra!.key as ExternalKey).decrypt, 'function', 'RSA: can decrypt');
    assert.equal(issuing.decrypt, undefined, 'EC: cannot');
    const data = Buffer.from('tbs');
    // A failed open fails the signature, and the next one tries again.
    await assert.rejects(signWith(issuing, data, 'sha256'), /needs a PIN/);
    const sig = await signWith(issuing, data, 'sha256');
    await signWith(issuing, data, 'sha256');
    assert.ok(verify('sha256', data, keys.issuing.publicKey, sig));
    assert.deepEqual(opened, ['issuing CA', 'issuing CA'], 'opened once it worked');

    const wrong = await loadAuthority(dir, noPassphrase, {
      defer: true,
      openKey: async () => keys.root,
    });
    await assert.rejects(
      signWith(wrong.issuing.key, data, 'sha256'),
      (e) => isPkiError(e, 'ERR_PKI_INVALID_ARGUMENT') && /does not match/.test(e.message),
    );
  });
});

/** A CA of token-held keys (stand-ins), saved in a fresh directory. */
async function tokenCa() {
  const keys = {
    root: externalKey('pkcs11:token=t;object=root', 'ec'),
    issuing: externalKey('pkcs11:token=t;object=issuing', 'ec'),
    ra: externalKey('pkcs11:token=t;object=ra', 'rsa'),
  };
  const asked: string[] = [];
  const ca = await createAuthority(
    { keyType: 'ec', rootSubject: 'CN=R', issuingSubject: 'CN=I', now: NOW },
    {
      generate: async (spec, role) => {
        asked.push(`${role} ${spec.type}`);
        return keys[role];
      },
      adopt: () => Promise.reject(new Error('nothing to adopt')),
    },
  );
  assert.equal(ca.issuing.key, keys.issuing);
  assert.equal(ca.ra?.key, keys.ra, 'an EC issuing CA gets its RA key from the key source');
  const dir = tempDir();
  await saveAuthority(dir, ca, noPassphrase);
  return { keys, asked, dir };
}

/** An openssl-made RSA hierarchy (testing/tools.ts), and a self-signed certificate that is no CA. */
function opensslHierarchy(issuingKu: string) {
  const { dir, p } = opensslCaHierarchy({ newkey: ['-newkey', 'rsa:2048'], issuingKu });
  run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    p('leaf.key'),
    '-subj',
    '/CN=Not a CA',
    '-addext',
    'basicConstraints=critical,CA:FALSE',
    '-out',
    p('leaf.pem'),
  ]);
  return { dir, p };
}

describe('importAuthority', () => {
  it('imports a PFX: the keyed certificate is the issuing CA, the self-signed one the root', async () => {
    const { p } = opensslCaHierarchy({
      newkey: ['-newkey', 'rsa:2048'],
      issuingKu: 'digitalSignature,keyEncipherment,keyCertSign,cRLSign',
      pfxPassword: 'pfxpass',
    });
    const ca = await importAuthority(new Uint8Array(readFileSync(p('ca.pfx'))), 'pfxpass');
    assert.equal(inspectCertificate(ca.issuing.certificate).subject, 'CN=Imported Issuing');
    assert.equal(inspectCertificate(ca.root.certificate).subject, 'CN=Imported Root');
    assert.equal(ca.root.key, undefined);
    assert.equal(ca.ra, undefined); // RSA with digitalSignature + keyEncipherment serves SCEP itself
    assert.deepEqual(ca.intermediates, []);
    await assert.rejects(
      importAuthority(new Uint8Array(readFileSync(p('ca.pfx'))), 'nope'),
      (e) => isPkiError(e) && /PASSWORD|MAC/.test(e.code),
    );
  });

  it('imports PEM; a CA key usage without keyEncipherment (micromdm 2.1.0) gets an RA', async () => {
    const { p } = opensslHierarchy('keyCertSign,cRLSign');
    const pem = [p('issuing.key'), p('issuing.pem'), p('root.pem')]
      .map((f) => readFileSync(f, 'utf8'))
      .join('');
    const ca = await importAuthority(new Uint8Array(Buffer.from(pem)), undefined, {
      now: new Date(),
    });
    assert.ok(ca.ra);
    assert.ok(verifySignature(ca.ra.certificate, ca.issuing.certificate.spki));
    assert.deepEqual(inspectCertificate(ca.ra.certificate).keyUsage, [
      'digitalSignature',
      'keyEncipherment',
    ]);
  });

  it('a self-signed CA alone is its own root (with its key); an EC one gets an RA', async () => {
    const dir = tempDir();
    run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      join(dir, 'k.pem'),
      '-subj',
      '/CN=Solo CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-out',
      join(dir, 'c.pem'),
    ]);
    const pem = readFileSync(join(dir, 'k.pem'), 'utf8') + readFileSync(join(dir, 'c.pem'), 'utf8');
    const ca = await importAuthority(new Uint8Array(Buffer.from(pem)));
    assert.equal(ca.root.certificate, ca.issuing.certificate);
    assert.ok(sw(ca.root.key).equals(sw(ca.issuing.key)));
    assert.ok(ca.ra);
  });

  it('hands the issuing key to the key source only once the file passes, and gets the RA key there', async () => {
    const { p } = opensslHierarchy('keyCertSign,cRLSign');
    const pem = (...files: string[]) =>
      new Uint8Array(Buffer.from(files.map((f) => readFileSync(p(f), 'utf8')).join('')));
    const calls: string[] = [];
    const ra = externalKey('pkcs11:token=t;object=ra', 'rsa');
    const source: KeySource = {
      generate: async (spec, role) => {
        calls.push(`generate ${role} ${spec.type}`);
        return ra;
      },
      adopt: async (key, role) => {
        calls.push(`adopt ${role}`);
        return {
          kind: 'external',
          label: `pkcs11:token=t;object=${role}`,
          publicKey: createPublicKey(key),
          sign: async (data, hash) => sign(hash, data, key),
        };
      },
    };
    // Refused files (no root; not a CA) adopt nothing.
    await assert.rejects(
      importAuthority(pem('issuing.key', 'issuing.pem'), undefined, { keys: source }),
    );
    await assert.rejects(importAuthority(pem('leaf.key', 'leaf.pem'), undefined, { keys: source }));
    assert.deepEqual(calls, []);
    const ca = await importAuthority(pem('issuing.key', 'issuing.pem', 'root.pem'), undefined, {
      keys: source,
    });
    assert.deepEqual(calls, ['adopt issuing', 'generate ra rsa']);
    assert.equal((ca.issuing.key as ExternalKey).label, 'pkcs11:token=t;object=issuing');
    assert.equal(ca.ra?.key, ra);
    // The RA certificate was signed by the adopted issuing key, for the source's RA key.
    assert.ok(verifySignature(ca.ra.certificate, ca.issuing.certificate.spki));
    assert.ok(keyMatchesCertificate({ key: ra, spki: spkiOf(ra) }, ca.ra.certificate));
  });

  it('refuses a certificate that is not a CA, and a chain without its root', async () => {
    const { p } = opensslHierarchy('keyCertSign,cRLSign');
    const leaf = readFileSync(p('leaf.key'), 'utf8') + readFileSync(p('leaf.pem'), 'utf8');
    await assert.rejects(
      importAuthority(new Uint8Array(Buffer.from(leaf))),
      (e) =>
        isPkiError(e, 'ERR_PKI_INVALID_ARGUMENT') &&
        /"CN=Not a CA" is not a CA certificate \(basicConstraints/.test(e.message),
    );
    const noRoot = readFileSync(p('issuing.key'), 'utf8') + readFileSync(p('issuing.pem'), 'utf8');
    await assert.rejects(
      importAuthority(new Uint8Array(Buffer.from(noRoot))),
      (e) =>
        isPkiError(e, 'ERR_PKI_INVALID_ARGUMENT') &&
        /include the chain up to the root/.test(e.message),
    );
  });
});
