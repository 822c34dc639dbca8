/**
 * PKCS#12 against the real producers: every fixture is made at test time by openssl, GnuTLS
 * certtool, NSS pk12util, Java keytool or python3-cryptography in a temporary directory, and
 * the expected values (thumbprints) come from `openssl x509 -fingerprint` on the source
 * certificates. What we write is read back by `openssl pkcs12` (3.0, no -legacy).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHmac, hash, pbkdf2Sync, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { python, run, tempDir } from '../testing/tools.ts';
import * as der from './der.ts';
import { enc } from './der.ts';
import { isPkiError, type PkiErrorCode } from './errors.ts';
import { parsePrivateKeyPem, type PrivateKey } from './keys.ts';
import { CMS, PKCS9 } from './oids.ts';
import {
  HASH_SIZES,
  KDF_ID,
  encodePbe,
  iterateHash,
  passwordBytes,
  pbeEncrypt,
  pbeSha13DesParams,
  pkcs12Kdf,
  type HashName,
} from './pkcs12-kdf.ts';
import {
  DEFAULT_MAX_ITERATIONS,
  MAX_ENCRYPTED_PARTS,
  MAX_WRITE_ITERATIONS,
  PKCS12_BAGS,
  encodePkcs12,
  looksLikePkcs12,
  parsePkcs12,
  type Pkcs12Contents,
} from './pkcs12.ts';
import { parseCertificate, sha1Thumbprint, sha256Thumbprint, type Certificate } from './x509.ts';

const dir = tempDir('certpost-pkcs12-');
const path = (name: string) => join(dir, name);
const openssl = (...args: string[]) => run('openssl', args);
const read = (name: string) => new Uint8Array(readFileSync(path(name)));

/** Thumbprint of the first certificate in a PEM text, as openssl computes it (lowercase hex). */
function fingerprint(pem: string | Buffer, alg: 'sha1' | 'sha256'): string {
  const out = run('openssl', ['x509', '-noout', '-fingerprint', `-${alg}`], {
    input: pem,
  }).toString();
  return out
    .slice(out.indexOf('=') + 1)
    .trim()
    .replaceAll(':', '')
    .toLowerCase();
}

function pemBlocks(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

function certFromPem(file: string): Certificate {
  const [block] = pemBlocks(readFileSync(path(file), 'latin1'));
  return parseCertificate(
    new Uint8Array(Buffer.from(block!.replace(/-----[^-]+-----|\s/g, ''), 'base64')),
  );
}

/** openssl's thumbprints of the given PEM files or PEM texts, sorted. */
function expectedThumbprints(pems: readonly string[], alg: 'sha1' | 'sha256'): string[] {
  return pems
    .map((p) => fingerprint(p.startsWith('-----') ? p : readFileSync(path(p)), alg))
    .toSorted();
}

/**
 * The key is the certificate's: same SubjectPublicKeyInfo bytes. Not `keyMatchesCertificate`:
 * on Node 24.21 `KeyObject.equals` across key types (RSA key, EC certificate) leaves an OpenSSL
 * error queued, and the next `createPrivateKey` in the process fails with it.
 */
function sameKey(key: PrivateKey, cert: Certificate): boolean {
  return Buffer.compare(key.spki, cert.spki) === 0;
}

interface Expectation {
  certs: readonly string[];
  keys: readonly ('rsa' | 'ec')[];
  friendlyName?: string;
  mac?: string;
  macIterations?: number;
  encryption?: readonly string[];
}

/** Checks certificates, keys and attributes against openssl's view of the source files. */
function expectContents(p12: Pkcs12Contents, e: Expectation): void {
  const ours = (f: (c: Certificate) => string) =>
    p12.certificates.map((c) => f(c.certificate)).toSorted();
  assert.equal(p12.certificates.length, e.certs.length, 'certificate count');
  assert.deepEqual(ours(sha256Thumbprint), expectedThumbprints(e.certs, 'sha256'));
  assert.deepEqual(ours(sha1Thumbprint), expectedThumbprints(e.certs, 'sha1'));
  assert.deepEqual(p12.keys.map((k) => k.info.type).toSorted(), [...e.keys].toSorted());
  for (const key of p12.keys) {
    // Every key has its certificate, linked by localKeyId where the producer writes one.
    const mine = p12.certificates.filter((c) => sameKey(key, c.certificate));
    assert.equal(mine.length, 1, 'the key has its certificate');
    if (key.localKeyId !== undefined) assert.equal(mine[0]!.localKeyId, key.localKeyId);
  }
  if (e.friendlyName !== undefined) {
    assert.equal(p12.keys[0]?.friendlyName, e.friendlyName);
    assert.ok(p12.certificates.some((c) => c.friendlyName === e.friendlyName));
  }
  if (e.mac !== undefined) assert.equal(p12.integrity.mac, e.mac);
  if (e.macIterations !== undefined) assert.equal(p12.integrity.iterations, e.macIterations);
  if (e.encryption !== undefined)
    assert.deepEqual([...p12.encryption].toSorted(), [...e.encryption].toSorted());
}

async function rejects(p: Promise<unknown>, code: PkiErrorCode): Promise<Error> {
  try {
    await p;
  } catch (e) {
    assert.ok(isPkiError(e, code), `expected ${code}, got ${String(e)}`);
    return e as Error;
  }
  assert.fail(`expected ${code}, got success`);
}

/** A PFX (no MAC unless given) whose AuthenticatedSafe holds these ContentInfos. */
const pfxOf = (contentInfos: readonly Uint8Array[], macData?: Uint8Array) =>
  enc.seq(
    enc.int(3),
    enc.seq(enc.oid(CMS.data), enc.ctx(0, enc.octets(enc.seq(...contentInfos)))),
    ...(macData ? [macData] : []),
  );
/** An EncryptedData part (3DES PKCS#12 PBE) with this iteration count and junk content. */
const encryptedPart = (iterations: number) =>
  enc.seq(
    enc.oid(CMS.encryptedData),
    enc.ctx(
      0,
      enc.seq(
        enc.int(0),
        enc.seq(
          enc.oid(CMS.data),
          encodePbe(pbeSha13DesParams(iterations)),
          enc.ctxPrim(0, new Uint8Array(8)),
        ),
      ),
    ),
  );
/** MacData with this digest OID and iteration count (the digest itself is junk). */
const junkMacData = (digestOid: string, iterations: number) =>
  enc.seq(
    enc.seq(enc.seq(enc.oid(digestOid), enc.null()), enc.octets(new Uint8Array(64))),
    enc.octets(new Uint8Array(8)),
    enc.int(iterations),
  );

const CHAIN = ['leaf-rsa.pem', 'inter.pem', 'root.pem'];
const PBES2_256 = 'pbes2-aes-256-cbc-pbkdf2-hmac-sha256';

/** `openssl pkcs12 -export` of the RSA leaf with its chain, plus extra options. */
function opensslExport(out: string, pass: string, ...extra: string[]): Uint8Array {
  openssl(
    'pkcs12',
    '-export',
    '-in',
    path('leaf-rsa.pem'),
    '-inkey',
    path('leaf-rsa.key'),
    '-certfile',
    path('chain.pem'),
    '-name',
    'my leaf',
    '-out',
    path(out),
    '-passout',
    `pass:${pass}`,
    ...extra,
  );
  return read(out);
}

before(() => {
  // Root and intermediate (EC, fast), an RSA-2048 leaf and an EC leaf under the intermediate.
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
  const ca = [
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ];
  openssl(
    'req',
    '-x509',
    ...ec,
    '-nodes',
    '-keyout',
    path('root.key'),
    '-out',
    path('root.pem'),
    '-subj',
    '/CN=Test Root',
    '-days',
    '30',
    ...ca,
  );
  openssl(
    'req',
    '-x509',
    ...ec,
    '-nodes',
    '-keyout',
    path('inter.key'),
    '-out',
    path('inter.pem'),
    '-subj',
    '/CN=Test Intermediate',
    '-days',
    '30',
    '-CA',
    path('root.pem'),
    '-CAkey',
    path('root.key'),
    ...ca,
  );
  for (const [name, alg] of [
    ['leaf-rsa', ['-newkey', 'rsa:2048']],
    ['leaf-ec', ec],
  ] as const) {
    openssl(
      'req',
      '-x509',
      ...alg,
      '-nodes',
      '-keyout',
      path(`${name}.key`),
      '-out',
      path(`${name}.pem`),
      '-subj',
      `/CN=${name}`,
      '-days',
      '30',
      '-CA',
      path('inter.pem'),
      '-CAkey',
      path('inter.key'),
    );
  }
  writeFileSync(
    path('chain.pem'),
    readFileSync(path('inter.pem'), 'latin1') + readFileSync(path('root.pem'), 'latin1'),
  );
});

describe('pkcs12: reading files from real producers', () => {
  it('openssl 3 default (PBES2 AES-256, HMAC-SHA256): chain of 3, RSA key, friendlyName, localKeyId', async () => {
    const bytes = opensslExport('default.p12', 'secret');
    assert.ok(looksLikePkcs12(bytes));
    const p12 = await parsePkcs12(bytes, 'secret');
    expectContents(p12, {
      certs: CHAIN,
      keys: ['rsa'],
      friendlyName: 'my leaf',
      mac: 'hmac-sha256',
      macIterations: 2048,
      encryption: [PBES2_256],
    });
    // OpenSSL's localKeyId is the SHA-1 of the key's certificate.
    assert.equal(p12.keys[0]!.localKeyId, sha1Thumbprint(certFromPem('leaf-rsa.pem')));
  });

  it('openssl 3 default with an EC key', async () => {
    openssl(
      'pkcs12',
      '-export',
      '-in',
      path('leaf-ec.pem'),
      '-inkey',
      path('leaf-ec.key'),
      '-name',
      'ec leaf',
      '-out',
      path('ec.p12'),
      '-passout',
      'pass:secret',
    );
    expectContents(await parsePkcs12(read('ec.p12'), 'secret'), {
      certs: ['leaf-ec.pem'],
      keys: ['ec'],
      friendlyName: 'ec leaf',
    });
  });

  it('openssl -legacy: RC2-40 certificates, 3DES key, SHA-1 MAC', async () => {
    const p12 = await parsePkcs12(opensslExport('legacy.p12', 'secret', '-legacy'), 'secret');
    expectContents(p12, {
      certs: CHAIN,
      keys: ['rsa'],
      friendlyName: 'my leaf',
      mac: 'hmac-sha1',
      encryption: ['pbe-sha1-rc2-40', 'pbe-sha1-3des'],
    });
  });

  it('Windows style: PBE-SHA1-3DES for key and certificates, SHA-1 MAC', async () => {
    const bytes = opensslExport(
      'win.p12',
      'secret',
      '-certpbe',
      'PBE-SHA1-3DES',
      '-keypbe',
      'PBE-SHA1-3DES',
      '-macalg',
      'sha1',
    );
    const p12 = await parsePkcs12(bytes, 'secret');
    expectContents(p12, {
      certs: CHAIN,
      keys: ['rsa'],
      friendlyName: 'my leaf',
      mac: 'hmac-sha1',
      encryption: ['pbe-sha1-3des'],
    });
  });

  it('no MAC and no encryption (keyBag, plain certBags), password absent', async () => {
    const bytes = opensslExport('plain.p12', '', '-nomac', '-keypbe', 'NONE', '-certpbe', 'NONE');
    const p12 = await parsePkcs12(bytes, undefined);
    expectContents(p12, {
      certs: CHAIN,
      keys: ['rsa'],
      friendlyName: 'my leaf',
      mac: 'none',
      macIterations: 0,
      encryption: ['none'],
    });
  });

  it('empty password: read with "" and with no password (both BMPString forms are tried)', async () => {
    for (const extra of [[], ['-legacy']]) {
      const bytes = opensslExport('empty.p12', '', ...extra);
      expectContents(await parsePkcs12(bytes, ''), { certs: CHAIN, keys: ['rsa'] });
      expectContents(await parsePkcs12(bytes, undefined), { certs: CHAIN, keys: ['rsa'] });
      await rejects(parsePkcs12(bytes, 'not empty'), 'ERR_PKI_BAD_PASSWORD');
    }
  });

  it('non-ASCII password: UTF-16 BMPString for the PKCS#12 KDF, UTF-8 for PBKDF2', async () => {
    const pw = 'pässwörd✓';
    for (const extra of [[], ['-legacy']]) {
      const bytes = opensslExport('utf8.p12', pw, ...extra);
      expectContents(await parsePkcs12(bytes, pw), {
        certs: CHAIN,
        keys: ['rsa'],
        friendlyName: 'my leaf',
      });
      await rejects(parsePkcs12(bytes, 'passwoerd'), 'ERR_PKI_BAD_PASSWORD');
    }
  });

  it('MAC iteration count absent (DEFAULT 1, openssl -nomaciter)', async () => {
    const p12 = await parsePkcs12(opensslExport('nomaciter.p12', 'secret', '-nomaciter'), 'secret');
    expectContents(p12, { certs: CHAIN, keys: ['rsa'], mac: 'hmac-sha256', macIterations: 1 });
  });

  it('GnuTLS certtool --to-p12: PBES2 AES-128, 600,000 iterations', async () => {
    run('certtool', [
      '--to-p12',
      '--load-privkey',
      path('leaf-ec.key'),
      '--load-certificate',
      path('leaf-ec.pem'),
      '--p12-name',
      'gnutls leaf',
      '--password',
      'secret',
      '--outder',
      '--outfile',
      path('gnutls.p12'),
    ]);
    const p12 = await parsePkcs12(read('gnutls.p12'), 'secret');
    expectContents(p12, {
      certs: ['leaf-ec.pem'],
      keys: ['ec'],
      friendlyName: 'gnutls leaf',
      mac: 'hmac-sha256',
    });
    assert.ok(
      p12.integrity.iterations >= 100_000,
      `certtool iterations: ${p12.integrity.iterations}`,
    );
    assert.deepEqual(p12.encryption, ['pbes2-aes-128-cbc-pbkdf2-hmac-sha256']);
    await rejects(
      parsePkcs12(read('gnutls.p12'), 'secret', { maxIterations: 100_000 }),
      'ERR_PKI_LIMIT',
    );
  });

  it('NSS pk12util -o: BER (indefinite lengths, constructed OCTET STRINGs)', async () => {
    const db = path('nssdb');
    mkdirSync(db);
    run('certutil', ['-N', '--empty-password', '-d', `sql:${db}`]);
    run('pk12util', ['-i', path('default.p12'), '-d', `sql:${db}`, '-W', 'secret', '-K', '']);
    run('pk12util', [
      '-o',
      path('nss.p12'),
      '-n',
      'my leaf',
      '-d',
      `sql:${db}`,
      '-W',
      'secret',
      '-K',
      '',
    ]);
    const bytes = read('nss.p12');
    assert.deepEqual([bytes[0], bytes[1]], [0x30, 0x80], 'NSS writes an indefinite length');
    assert.ok(looksLikePkcs12(bytes));
    // NSS exports the nicknamed certificate, its chain and its key.
    expectContents(await parsePkcs12(bytes, 'secret'), {
      certs: CHAIN,
      keys: ['rsa'],
      friendlyName: 'my leaf',
      mac: 'hmac-sha256',
      encryption: [PBES2_256, 'pbes2-aes-128-cbc-pbkdf2-hmac-sha256'],
    });
  });

  it('Java keytool -storetype PKCS12: an RSA and an EC key entry', async () => {
    const ks = path('java.p12');
    for (const [alias, alg] of [
      ['rsa-entry', ['-keyalg', 'RSA', '-keysize', '2048']],
      ['ec-entry', ['-keyalg', 'EC', '-groupname', 'secp256r1']],
    ] as const) {
      run('keytool', [
        '-genkeypair',
        '-alias',
        alias,
        ...alg,
        '-dname',
        `CN=${alias}`,
        '-validity',
        '30',
        '-storetype',
        'PKCS12',
        '-keystore',
        ks,
        '-storepass',
        'changeit',
        '-keypass',
        'changeit',
      ]);
    }
    const certs = pemBlocks(
      openssl('pkcs12', '-in', ks, '-nokeys', '-passin', 'pass:changeit').toString(),
    );
    const p12 = await parsePkcs12(read('java.p12'), 'changeit');
    expectContents(p12, { certs, keys: ['rsa', 'ec'] });
    assert.deepEqual(p12.keys.map((k) => k.friendlyName).toSorted(), ['ec-entry', 'rsa-entry']);
  });

  it('python3-cryptography: BestAvailableEncryption and a 3DES/SHA-1 encryption_builder', async () => {
    python(
      `
import sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import PrivateFormat, pkcs12
key = serialization.load_pem_private_key(open(sys.argv[1], 'rb').read(), None)
cert = x509.load_pem_x509_certificate(open(sys.argv[2], 'rb').read())
cas = [x509.load_pem_x509_certificate(open(p, 'rb').read()) for p in sys.argv[3:5]]
best = serialization.BestAvailableEncryption(b'secret')
open(sys.argv[5] + '-best.p12', 'wb').write(pkcs12.serialize_key_and_certificates(b'py leaf', key, cert, cas, best))
legacy = (PrivateFormat.PKCS12.encryption_builder().kdf_rounds(2000)
  .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC).hmac_hash(hashes.SHA1()).build(b'secret'))
open(sys.argv[5] + '-3des.p12', 'wb').write(pkcs12.serialize_key_and_certificates(b'py leaf', key, cert, cas, legacy))
`,
      [path('leaf-ec.key'), path('leaf-ec.pem'), path('inter.pem'), path('root.pem'), path('py')],
    );
    const chain = ['leaf-ec.pem', 'inter.pem', 'root.pem'];
    const best = await parsePkcs12(read('py-best.p12'), 'secret');
    // cryptography 38 writes its MAC with one iteration (whatever kdf_rounds says).
    expectContents(best, {
      certs: chain,
      keys: ['ec'],
      friendlyName: 'py leaf',
      mac: 'hmac-sha256',
      macIterations: 1,
      encryption: [PBES2_256],
    });
    const des = await parsePkcs12(read('py-3des.p12'), 'secret');
    expectContents(des, {
      certs: chain,
      keys: ['ec'],
      friendlyName: 'py leaf',
      mac: 'hmac-sha1',
      macIterations: 1,
      encryption: ['pbe-sha1-3des'],
    });
  });

  it('nested safeContentsBag and an unencrypted keyBag', async () => {
    const key = parsePrivateKeyPem(readFileSync(path('leaf-ec.key'), 'latin1'));
    const leaf = certFromPem('leaf-ec.pem');
    const root = certFromPem('root.pem');
    const attrs = enc.setOf(enc.seq(enc.oid(PKCS9.friendlyName), enc.setOf(enc.bmp('nested'))));
    const keyBag = enc.seq(
      enc.oid(PKCS12_BAGS.keyBag),
      enc.ctx(0, new Uint8Array(key.key.export({ type: 'pkcs8', format: 'der' }))),
      attrs,
    );
    const inner = enc.seq(
      enc.oid(PKCS12_BAGS.safeContentsBag),
      enc.ctx(0, enc.seq(keyBag, certBag(leaf, attrs))),
    );
    const authSafe = enc.seq(
      enc.seq(enc.oid(CMS.data), enc.ctx(0, enc.octets(enc.seq(certBag(root), inner)))),
    );
    const pfx = enc.seq(enc.int(3), enc.seq(enc.oid(CMS.data), enc.ctx(0, enc.octets(authSafe))));
    const p12 = await parsePkcs12(pfx, undefined);
    expectContents(p12, {
      certs: ['root.pem', 'leaf-ec.pem'],
      keys: ['ec'],
      friendlyName: 'nested',
      mac: 'none',
      encryption: ['none'],
    });
  });

  it('falls back to OpenSSL 1.0 byte-wise password widening when the MAC does not verify', async () => {
    const pw = 'pässwörd✓';
    const plain = opensslExport(
      'plain-mac.p12',
      '',
      '-nomac',
      '-keypbe',
      'NONE',
      '-certpbe',
      'NONE',
    );
    const [, authSafeCi] = der.seq(der.decode(plain), 'PFX');
    const authSafe = der.octets(der.children(der.children(authSafeCi!)[1]!)[0]!);
    const utf8 = Buffer.from(pw, 'utf8');
    const widened = new Uint8Array(utf8.length * 2 + 2);
    utf8.forEach((b, i) => (widened[2 * i + 1] = b));
    const salt = randomBytes(8);
    const macKey = pkcs12Kdf('sha1', widened, salt, KDF_ID.mac, 1000, 20);
    const mac = createHmac('sha1', macKey).update(authSafe).digest();
    const macData = enc.seq(
      enc.seq(enc.seq(enc.oid('1.3.14.3.2.26'), enc.null()), enc.octets(mac)),
      enc.octets(salt),
      enc.int(1000),
    );
    const pfx = enc.seq(
      enc.int(3),
      enc.seq(enc.oid(CMS.data), enc.ctx(0, enc.octets(authSafe))),
      macData,
    );
    expectContents(await parsePkcs12(pfx, pw), {
      certs: CHAIN,
      keys: ['rsa'],
      mac: 'hmac-sha1',
      macIterations: 1000,
    });
  });

  it('PBMAC1 integrity (RFC 9579): PBKDF2-HMAC-SHA256 key, HMAC-SHA256', async () => {
    const plain = opensslExport(
      'plain-pbmac1.p12',
      '',
      '-nomac',
      '-keypbe',
      'NONE',
      '-certpbe',
      'NONE',
    );
    const [, authSafeCi] = der.seq(der.decode(plain), 'PFX');
    const authSafe = der.octets(der.children(der.children(authSafeCi!)[1]!)[0]!);
    const salt = randomBytes(16);
    const mac = createHmac('sha256', pbkdf2Sync('1234', salt, 1000, 32, 'sha256'))
      .update(authSafe)
      .digest();
    const hmacSha256 = enc.seq(enc.oid('1.2.840.113549.2.9'), enc.null());
    const pbmac1 = enc.seq(
      enc.oid('1.2.840.113549.1.5.14'),
      enc.seq(
        enc.seq(
          enc.oid('1.2.840.113549.1.5.12'),
          enc.seq(enc.octets(salt), enc.int(1000), enc.int(32), hmacSha256),
        ),
        hmacSha256,
      ),
    );
    const macData = enc.seq(
      enc.seq(pbmac1, enc.octets(mac)),
      enc.octets(Uint8Array.of(0)),
      enc.int(1),
    );
    const pfx = enc.seq(
      enc.int(3),
      enc.seq(enc.oid(CMS.data), enc.ctx(0, enc.octets(authSafe))),
      macData,
    );
    expectContents(await parsePkcs12(pfx, '1234'), {
      certs: CHAIN,
      keys: ['rsa'],
      mac: 'pbmac1',
      macIterations: 1000,
    });
    await rejects(parsePkcs12(pfx, '12345'), 'ERR_PKI_BAD_PASSWORD');
  });
});

/** A SafeBag holding a certBag (RFC 7292 §4.2.3). */
function certBag(c: Certificate, attrs?: Uint8Array): Uint8Array {
  return enc.seq(
    enc.oid(PKCS12_BAGS.certBag),
    enc.ctx(0, enc.seq(enc.oid(PKCS9.x509Certificate), enc.ctx(0, enc.octets(c.der)))),
    ...(attrs ? [attrs] : []),
  );
}

/** Offset of the MAC digest's first octet in a DER PFX. */
function macOffset(bytes: Uint8Array): number {
  const [, , macData] = der.seq(der.decode(bytes), 'PFX');
  const [digestInfo] = der.seq(macData, 'MacData');
  return der.seq(digestInfo, 'DigestInfo')[1]!.valueStart;
}

describe('pkcs12: failures', () => {
  it('empty, truncated and garbage input', async () => {
    const bytes = read('default.p12');
    await rejects(parsePkcs12(new Uint8Array(0), 'secret'), 'ERR_PKI_EMPTY');
    await rejects(parsePkcs12(bytes.subarray(0, bytes.length - 40), 'secret'), 'ERR_PKI_TRUNCATED');
    await rejects(parsePkcs12(bytes.subarray(0, 10), 'secret'), 'ERR_PKI_TRUNCATED');
    await rejects(parsePkcs12(certFromPem('root.pem').der, 'secret'), 'ERR_PKI_MALFORMED');
    await rejects(
      parsePkcs12(
        enc.seq(enc.int(3), enc.seq(enc.oid(CMS.data), enc.ctx(0, enc.octets(enc.int(5))))),
        'x',
      ),
      'ERR_PKI_MALFORMED',
    );
    assert.equal(looksLikePkcs12(certFromPem('root.pem').der), false);
    assert.equal(looksLikePkcs12(new TextEncoder().encode('hello, world')), false);
    assert.equal(looksLikePkcs12(new Uint8Array(0)), false);
  });

  it('one MAC byte flipped: MAC mismatch (the password still decrypts), for every scheme', async () => {
    for (const name of ['default.p12', 'legacy.p12', 'win.p12', 'nss.p12']) {
      const bytes = Uint8Array.from(read(name));
      bytes[macOffset(bytes)]! ^= 0x01;
      await rejects(parsePkcs12(bytes, 'secret'), 'ERR_PKI_MAC_MISMATCH');
    }
  });

  it('one ciphertext byte flipped in either encrypted part: MAC mismatch (the other part decrypts)', async () => {
    const original = read('default.p12');
    const [, authSafeCi] = der.seq(der.decode(original), 'PFX');
    const os = der.children(der.children(authSafeCi!)[1]!)[0]!;
    const [certsCi, keyCi] = der.seq(der.decode(der.value(os)), 'AuthenticatedSafe');
    // EncryptedData: [0] { SEQUENCE { version, EncryptedContentInfo { type, alg, [0] ciphertext } } }
    const eci = der.seq(
      der.seq(der.children(der.children(certsCi!)[1]!)[0], 'EncryptedData')[1],
      'EncryptedContentInfo',
    );
    // Data: [0] { OCTET STRING { SafeContents { SafeBag { id, [0] { EncryptedPrivateKeyInfo { alg, OCTET STRING } } } } } }
    const keyOs = der.children(der.children(keyCi!)[1]!)[0]!;
    const bag = der.seq(der.decode(der.value(keyOs)), 'SafeContents')[0]!;
    const epki = der.seq(der.children(der.seq(bag, 'SafeBag')[1]!)[0], 'EncryptedPrivateKeyInfo');
    const base = os.valueStart;
    for (const offset of [
      base + eci[2]!.valueStart + 40,
      base + keyOs.valueStart + epki[1]!.valueStart + 40,
    ]) {
      const bytes = Uint8Array.from(original);
      bytes[offset]! ^= 0x01;
      await rejects(parsePkcs12(bytes, 'secret'), 'ERR_PKI_MAC_MISMATCH');
    }
  });

  it('wrong password: the same error and message whichever cipher refused it', async () => {
    const messages = new Set<string>();
    for (const name of ['default.p12', 'legacy.p12', 'win.p12']) {
      messages.add(
        (await rejects(parsePkcs12(read(name), 'wrong'), 'ERR_PKI_BAD_PASSWORD')).message,
      );
    }
    // Without a MAC the decryption itself must fail, still with the same message.
    const noMac = opensslExport('nomac-enc.p12', 'secret', '-nomac', '-legacy');
    messages.add((await rejects(parsePkcs12(noMac, 'wrong'), 'ERR_PKI_BAD_PASSWORD')).message);
    assert.equal(messages.size, 1, [...messages].join(' | '));
  });

  it('wrong password whose decryption pads validly into DER the decoder refuses: wrong password', async () => {
    // About one wrong password in 256 decrypts with valid padding; here it is made certain: the
    // part is encrypted under the wrong password to a DER header with a five-octet length (a
    // decoder limit), and the MAC is keyed by the right one. The CLI flaked on exactly this.
    const wrong = passwordBytes('wrong');
    const params = pbeSha13DesParams(2000);
    const ciphertext = await pbeEncrypt(params, wrong, Uint8Array.of(0x30, 0x85, 1, 2, 3, 4, 5));
    const encryptedData = enc.seq(
      enc.oid(CMS.encryptedData),
      enc.ctx(
        0,
        enc.seq(
          enc.int(0),
          enc.seq(enc.oid(CMS.data), encodePbe(params), enc.ctxPrim(0, ciphertext)),
        ),
      ),
    );
    const authSafe = enc.seq(encryptedData);
    const salt = randomBytes(8);
    const macKey = pkcs12Kdf('sha1', passwordBytes('secret').bmp, salt, KDF_ID.mac, 2000, 20);
    const pfx = enc.seq(
      enc.int(3),
      enc.seq(enc.oid(CMS.data), enc.ctx(0, enc.octets(authSafe))),
      enc.seq(
        enc.seq(
          enc.seq(enc.oid('1.3.14.3.2.26'), enc.null()),
          enc.octets(createHmac('sha1', macKey).update(authSafe).digest()),
        ),
        enc.octets(salt),
        enc.int(2000),
      ),
    );
    await rejects(parsePkcs12(pfx, 'wrong'), 'ERR_PKI_BAD_PASSWORD');
    await rejects(parsePkcs12(pfx, 'secret'), 'ERR_PKI_BAD_PASSWORD');
  });

  it('encrypted content and no password: password required', async () => {
    await rejects(parsePkcs12(read('default.p12'), undefined), 'ERR_PKI_PASSWORD_REQUIRED');
    await rejects(parsePkcs12(read('nomac-enc.p12'), undefined), 'ERR_PKI_PASSWORD_REQUIRED');
  });

  it('iteration counts above maxIterations are refused before any derivation', async () => {
    const t0 = performance.now();
    await rejects(
      parsePkcs12(read('default.p12'), 'secret', { maxIterations: 2047 }),
      'ERR_PKI_LIMIT',
    );
    await rejects(
      parsePkcs12(read('gnutls.p12'), 'secret', { maxIterations: 1000 }),
      'ERR_PKI_LIMIT',
    );
    assert.ok(performance.now() - t0 < 50, 'refused without deriving keys');
  });

  it('a count of 10^9 is refused before any derivation, by default', async () => {
    const t0 = performance.now();
    await rejects(parsePkcs12(pfxOf([encryptedPart(1_000_000_000)]), 'x'), 'ERR_PKI_LIMIT');
    await rejects(
      parsePkcs12(pfxOf([], junkMacData('2.16.840.1.101.3.4.2.1', 1_000_000_000)), 'x'),
      'ERR_PKI_LIMIT',
    );
    assert.ok(performance.now() - t0 < 200, 'refused without deriving keys');
  });

  it('the budget is the total: parts each within it but over it together are refused first', async () => {
    // 3DES costs three SHA-1 blocks per iteration (24-byte key, 8-byte IV): 300,000 a part.
    // Nine parts are 2.7 million, over the default 2.5 million; each alone passed the old
    // per-count cap, and 32 of them at that cap meant minutes of derivation.
    assert.equal(DEFAULT_MAX_ITERATIONS, 2_500_000);
    const t0 = performance.now();
    const err = await rejects(
      parsePkcs12(pfxOf(Array.from({ length: 9 }, () => encryptedPart(100_000))), 'x'),
      'ERR_PKI_LIMIT',
    );
    assert.match(err.message, /demands 2700000 iterations/);
    assert.ok(performance.now() - t0 < 200, 'refused without deriving keys');
  });

  it('a MAC hash without the fast path counts four units per iteration', async () => {
    // SHA-512's Appendix B KDF makes a native call per iteration: 700,000 of them is 2.8 million.
    await rejects(
      parsePkcs12(pfxOf([encryptedPart(1)], junkMacData('2.16.840.1.101.3.4.2.3', 700_000)), 'x'),
      'ERR_PKI_LIMIT',
    );
  });

  it('a budget spent on password forms means "password required", not a limit', async () => {
    // No password: the empty password is tried in two encodings. default.p12 costs 6,144 per
    // form (MAC and two parts at 2048); 10,000 lets the MACs and the first form's decryption
    // run but not the second's, so the probe for a modified file stops at the budget.
    await rejects(
      parsePkcs12(read('default.p12'), undefined, { maxIterations: 10_000 }),
      'ERR_PKI_PASSWORD_REQUIRED',
    );
    // The same budget refuses upfront what one form alone would exceed.
    await rejects(
      parsePkcs12(read('default.p12'), 'secret', { maxIterations: 6_000 }),
      'ERR_PKI_LIMIT',
    );
  });

  it('what encodePkcs12 writes at its highest count reads back within the default budget', async () => {
    const key = parsePrivateKeyPem(readFileSync(path('leaf-ec.key'), 'latin1'));
    await rejects(
      encodePkcs12({ key, certificates: [certFromPem('leaf-ec.pem')] }, 'x', {
        iterations: MAX_WRITE_ITERATIONS + 1,
      }),
      'ERR_PKI_INVALID_ARGUMENT',
    );
    // compat: MAC (1 unit) + 3DES certificates and key (3 units each) per iteration.
    assert.ok(7 * MAX_WRITE_ITERATIONS <= DEFAULT_MAX_ITERATIONS);
  });

  it('more than MAX_ENCRYPTED_PARTS encrypted parts are refused before any derivation', async () => {
    const parts = Array.from({ length: MAX_ENCRYPTED_PARTS + 1 }, () => encryptedPart(1));
    await rejects(parsePkcs12(pfxOf(parts), 'x'), 'ERR_PKI_LIMIT');
  });

  it('unsupported encryption (RC4, patched OID): unsupported', async () => {
    const bytes = Uint8Array.from(read('win.p12'));
    // pbeWithSHAAnd3-KeyTripleDES-CBC (…12.1.3) → pbeWithSHAAnd128BitRC4 (…12.1.1), same length.
    const oid3des = Buffer.from('060a2a864886f70d010c0103', 'hex');
    const at = Buffer.from(bytes).indexOf(oid3des);
    assert.ok(at > 0);
    bytes[at + oid3des.length - 1] = 0x01;
    await rejects(parsePkcs12(bytes, 'secret'), 'ERR_PKI_UNSUPPORTED');
  });
});

describe('pkcs12: writing', () => {
  for (const profile of ['modern', 'compat'] as const) {
    for (const alg of ['rsa', 'ec'] as const) {
      it(`${profile} profile, ${alg.toUpperCase()} key: openssl 3 (no -legacy) and our parser read it`, async () => {
        const key = parsePrivateKeyPem(readFileSync(path(`leaf-${alg}.key`), 'latin1'));
        const certs = [`leaf-${alg}.pem`, 'inter.pem', 'root.pem'];
        const pw = profile === 'modern' ? 'pässwörd✓' : 'secret';
        const bytes = await encodePkcs12(
          { key, certificates: certs.map(certFromPem), friendlyName: 'written' },
          pw,
          { profile },
        );
        const file = path(`ours-${profile}-${alg}.p12`);
        writeFileSync(file, bytes);
        assert.deepEqual(der.raw(der.decode(bytes)), bytes, 'DER, one value');

        const info = openssl(
          'pkcs12',
          '-info',
          '-nodes',
          '-in',
          file,
          '-passin',
          `pass:${pw}`,
        ).toString();
        assert.match(info, /BEGIN PRIVATE KEY/);
        assert.match(info, /friendlyName: written/);
        // `openssl pkcs12 -info` writes the algorithm lines to stderr.
        const macLine = spawnSync('openssl', [
          'pkcs12',
          '-info',
          '-noout',
          '-in',
          file,
          '-passin',
          `pass:${pw}`,
        ]).stderr.toString();
        if (profile === 'modern') {
          assert.match(macLine, /MAC: sha256, Iteration 2048/);
          assert.match(
            macLine,
            /PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC, Iteration 2048, PRF hmacWithSHA256/,
          );
          assert.match(
            macLine,
            /Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 2048, PRF hmacWithSHA256/,
          );
        } else {
          assert.match(macLine, /MAC: sha1, Iteration 2000/);
          assert.match(
            macLine,
            /PKCS7 Encrypted data: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2000/,
          );
          assert.match(
            macLine,
            /Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2000/,
          );
        }
        const extracted = pemBlocks(
          openssl('pkcs12', '-in', file, '-nokeys', '-passin', `pass:${pw}`).toString(),
        );
        assert.deepEqual(
          expectedThumbprints(extracted, 'sha256'),
          expectedThumbprints(certs, 'sha256'),
        );

        const p12 = await parsePkcs12(bytes, pw);
        expectContents(p12, {
          certs,
          keys: [alg],
          friendlyName: 'written',
          mac: profile === 'modern' ? 'hmac-sha256' : 'hmac-sha1',
          encryption: [profile === 'modern' ? PBES2_256 : 'pbe-sha1-3des'],
        });
        assert.equal(p12.keys[0]!.localKeyId, sha1Thumbprint(certFromPem(certs[0]!)));
        assert.ok(p12.keys[0]!.key.equals(key.key));
      });
    }
  }

  it('writes a certificate-only file and an empty password', async () => {
    const bytes = await encodePkcs12({ certificates: [certFromPem('root.pem')] }, '', {
      iterations: 100,
    });
    writeFileSync(path('ours-certs.p12'), bytes);
    const extracted = pemBlocks(
      openssl('pkcs12', '-in', path('ours-certs.p12'), '-nokeys', '-passin', 'pass:').toString(),
    );
    assert.deepEqual(
      expectedThumbprints(extracted, 'sha256'),
      expectedThumbprints(['root.pem'], 'sha256'),
    );
    const p12 = await parsePkcs12(bytes, '');
    assert.equal(p12.keys.length, 0);
    assert.equal(p12.integrity.iterations, 100);
  });

  it('refuses a key that does not belong to the first certificate, and bad options', async () => {
    const key = parsePrivateKeyPem(readFileSync(path('leaf-ec.key'), 'latin1'));
    await rejects(
      encodePkcs12({ key, certificates: [certFromPem('leaf-rsa.pem')] }, 'x'),
      'ERR_PKI_INVALID_ARGUMENT',
    );
    await rejects(encodePkcs12({ key, certificates: [] }, 'x'), 'ERR_PKI_INVALID_ARGUMENT');
    await rejects(
      encodePkcs12({ key, certificates: [certFromPem('leaf-ec.pem')] }, 'x', { iterations: 0 }),
      'ERR_PKI_INVALID_ARGUMENT',
    );
  });
});

describe('pkcs12-kdf', () => {
  it('the one-block SHA-1/SHA-256 iteration equals repeated crypto.hash', () => {
    for (const alg of ['sha1', 'sha256', 'sha512'] as const) {
      for (const count of [1, 2, 3, 17, 1000]) {
        const input = randomBytes(1 + count);
        let expected: Uint8Array = hash(alg, input, 'buffer');
        for (let i = 1; i < count; i++) expected = hash(alg, expected, 'buffer');
        assert.deepEqual(
          iterateHash(alg, input, count),
          new Uint8Array(expected),
          `${alg} × ${count}`,
        );
      }
    }
  });

  it('matches OpenSSL’s PKCS12KDF (openssl kdf) for key, IV and MAC IDs and every hash', () => {
    const bmp = Buffer.from('\0s\0e\0c\0r\0e\0t\0\0', 'latin1');
    for (const alg of ['sha1', 'sha224', 'sha256', 'sha384', 'sha512'] as HashName[]) {
      for (const [id, n] of [
        [KDF_ID.key, 24],
        [KDF_ID.iv, 8],
        [KDF_ID.mac, HASH_SIZES[alg].u],
        [KDF_ID.key, 100],
      ] as const) {
        const salt = randomBytes(alg === 'sha1' ? 8 : 20);
        const out = openssl(
          'kdf',
          '-keylen',
          String(n),
          '-kdfopt',
          `digest:${alg.toUpperCase()}`,
          '-kdfopt',
          `hexpass:${bmp.toString('hex')}`,
          '-kdfopt',
          `hexsalt:${salt.toString('hex')}`,
          '-kdfopt',
          'iter:1000',
          '-kdfopt',
          `id:${id}`,
          'PKCS12KDF',
        ).toString();
        const ours = Buffer.from(pkcs12Kdf(alg, bmp, salt, id, 1000, n)).toString('hex');
        assert.equal(ours, out.trim().replaceAll(':', '').toLowerCase(), `${alg} id ${id} n ${n}`);
      }
    }
  });
});
