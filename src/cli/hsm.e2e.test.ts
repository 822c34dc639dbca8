/**
 * A CA whose keys live in a PKCS#11 token (issue 3), end to end with real parts: a SoftHSM2
 * token, `certpost ca init --pkcs11`, `certpost serve` as a process, a SCEP enrollment with
 * our client (the token decrypts the envelope and signs the certificate and the CertRep),
 * `openssl verify` of the certificate, a CRL signed by the token key, and a rollover whose
 * next key is made in the token too. Admin commands that only use the store run without the
 * PIN; those that sign fail without it and change nothing. `ca import --pkcs11` takes an
 * openssl-made CA's key into the token, and two worker processes sign through the token at
 * once. The PIN never shows in output, logs or the data directory.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openKeyByUri, openToken } from '../hsm/pkcs11.ts';
import { parsePkcs11Uri } from '../hsm/uri.ts';
import { encodePem } from '../pki/pem.ts';
import { createScepClient, fetchTransport } from '../scep/client.ts';
import { spawnServe, type ServeProcess } from '../testing/serve-process.ts';
import { createSoftHsmToken, type SoftHsmToken } from '../testing/softhsm.ts';
import { opensslCaHierarchy, run, tempDir } from '../testing/tools.ts';

const BIN = new URL('../../bin/certpost.js', import.meta.url).pathname;
let hsm: SoftHsmToken;
let dir = '';
let pinFile = '';
let env: NodeJS.ProcessEnv = {};
const servers: ServeProcess[] = [];

function certpost(args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...env, ...extraEnv },
    cwd: dir,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const openssl = (...args: string[]) => run('openssl', args, { cwd: dir }).toString();

/** Everything a run printed must be free of the PIN. */
function assertNoPin(...texts: string[]): void {
  for (const t of texts) assert.ok(!t.includes(hsm.userPin), 'the PIN appears in output');
}

before(() => {
  hsm = createSoftHsmToken('certpost-ca');
  dir = tempDir();
  pinFile = join(dir, 'pin');
  writeFileSync(pinFile, `${hsm.userPin}\n`, { mode: 0o600 });
  env = {
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CERTPOST_'))),
    SOFTHSM2_CONF: hsm.conf,
  };
});

after(async () => {
  for (const s of servers) await s.stop('SIGKILL');
  hsm?.remove();
});

const uriFor = (prefix: string) =>
  `pkcs11:token=${hsm.label};object=${prefix}?module-path=${hsm.module}`;

/** The labels of the token's private keys, sorted. */
async function tokenLabels(): Promise<string[]> {
  const token = await openToken({ module: hsm.module, token: hsm.label, pin: hsm.userPin });
  try {
    return (await token.listKeys()).map((k) => k.objectLabel).toSorted();
  } finally {
    await token.close();
  }
}

/** `openssl verify` of leaf certificates against a data directory's root and issuing CA. */
function verifyLeaves(data: string, leaves: readonly Uint8Array[], name: string): void {
  const files = leaves.map((der, i) => {
    const file = `${name}-${i}.pem`;
    writeFileSync(join(dir, file), encodePem('CERTIFICATE', der));
    return file;
  });
  const out = openssl(
    'verify',
    '-CAfile',
    join(data, 'ca', 'root.crt'),
    '-untrusted',
    join(data, 'ca', 'issuing.crt'),
    ...files,
  );
  assert.equal(out.match(/: OK$/gm)?.length, leaves.length, out);
}

for (const keyType of ['rsa', 'ec'] as const) {
  describe(`a ${keyType.toUpperCase()} CA in a SoftHSM2 token`, () => {
    const prefix = `e2e-${keyType}`;
    let data = '';
    let server: ServeProcess;

    it('ca init --pkcs11 generates the keys in the token and records only their URIs', () => {
      data = join(dir, `data-${keyType}`);
      const r = certpost(
        [
          'ca',
          'init',
          '--data',
          data,
          '--key-type',
          keyType,
          '--root-subject',
          'CN=Token Root,O=Example',
          '--issuing-subject',
          'CN=Token Issuing,O=Example',
          '--pkcs11',
          uriFor(prefix),
          '--json',
        ],
        { CERTPOST_PKCS11_PIN: hsm.userPin },
      );
      assert.equal(r.code, 0, r.stderr);
      assertNoPin(r.stdout, r.stderr);
      const { certificates } = JSON.parse(r.stdout) as {
        certificates: { subject: string; key?: string }[];
      };
      assert.deepEqual(
        certificates.map((c) => c.subject),
        [
          'CN=Token Root,O=Example',
          'CN=Token Issuing,O=Example',
          ...(keyType === 'ec' ? ['CN=Token Issuing SCEP RA,O=Example'] : []),
        ],
      );
      const labels = certificates.map((c) => parsePkcs11Uri(c.key!).object);
      assert.deepEqual(
        labels,
        keyType === 'rsa'
          ? [`${prefix}-root`, `${prefix}-issuing`]
          : [`${prefix}-root`, `${prefix}-issuing`, `${prefix}-ra`],
      );
      const files = readdirSync(join(data, 'ca')).toSorted();
      assert.deepEqual(
        files.filter((f) => f.includes('key') || f === 'passphrase'),
        keyType === 'rsa'
          ? ['issuing.key-ref', 'root.key-ref']
          : ['issuing.key-ref', 'ra.key-ref', 'root.key-ref'],
        'no key file and no passphrase: nothing secret in the data directory',
      );
      for (const f of files) assertNoPin(readFileSync(join(data, 'ca', f), 'utf8'));
    });

    it('a second init, a missing or wrong PIN are refused with one-line errors', () => {
      const again = certpost(['ca', 'init', '--data', data, '--pkcs11', uriFor(prefix)], {
        CERTPOST_PKCS11_PIN: hsm.userPin,
      });
      assert.equal(again.code, 2);
      assert.match(again.stderr, /already has a CA/);
      const other = join(dir, `other-${keyType}`);
      const noPin = certpost(['ca', 'init', '--data', other, '--pkcs11', uriFor(`${prefix}-x`)]);
      assert.equal(noPin.code, 4, noPin.stderr);
      assert.match(noPin.stderr, /needs a PIN/);
      const wrongFile = join(dir, 'wrong-pin');
      writeFileSync(wrongFile, 'not-the-pin-4711\n');
      const wrong = certpost([
        'ca',
        'init',
        '--data',
        other,
        '--pkcs11',
        uriFor(`${prefix}-x`),
        '--pkcs11-pin-file',
        wrongFile,
      ]);
      assert.equal(wrong.code, 4, wrong.stderr);
      assert.match(wrong.stderr, /^certpost: the token PIN is incorrect.*CKR_PIN_INCORRECT/);
      assert.doesNotMatch(wrong.stderr, /not-the-pin-4711/);
      const inUri = certpost([
        'ca',
        'init',
        '--data',
        other,
        '--pkcs11',
        `${uriFor(`${prefix}-x`)}${uriFor(`${prefix}-x`).includes('?') ? '&' : '?'}pin-value=4711`,
      ]);
      assert.notEqual(inUri.code, 0);
      assert.match(inUri.stderr, /no pin-value in the URI/);
      const emptyFile = join(dir, 'empty-pin');
      writeFileSync(emptyFile, '\n');
      const empty = certpost([
        'ca',
        'init',
        '--data',
        other,
        '--pkcs11',
        uriFor(`${prefix}-x`),
        '--pkcs11-pin-file',
        emptyFile,
      ]);
      assert.equal(empty.code, 4, empty.stderr);
      // Serving the token CA without its PIN fails at start instead of serving another CA.
      const serve = spawnSync(
        process.execPath,
        [BIN, 'serve', '--data', data, '--listen', '127.0.0.1:0'],
        { encoding: 'utf8', env, timeout: 30_000 },
      );
      assert.equal(serve.status, 4, serve.stderr);
      assert.match(serve.stderr, /needs a PIN/);
    });

    it('serve signs SCEP certificates with the token key; openssl verifies them', async () => {
      server = await spawnServe(
        [
          '--data',
          data,
          '--scep-challenge',
          'hsm-secret',
          '--log-level',
          'info',
          '--pkcs11-pin-file',
          pinFile,
        ],
        { env },
      );
      servers.push(server);
      const client = createScepClient(fetchTransport(`${server.url}/scep`));
      const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const r = await client.enroll({
        subject: `CN=device-${keyType},O=Example`,
        key: privateKey,
        challenge: 'hsm-secret',
      });
      assert.equal(r.status, 'issued');
      if (r.status !== 'issued') return;
      writeFileSync(join(dir, `leaf-${keyType}.pem`), encodePem('CERTIFICATE', r.certificate.der));
      assert.match(
        openssl(
          'verify',
          '-CAfile',
          join(data, 'ca', 'root.crt'),
          '-untrusted',
          join(data, 'ca', 'issuing.crt'),
          `leaf-${keyType}.pem`,
        ),
        /OK/,
      );
      // A wrong challenge still gets a signed CertRep FAILURE (signed by the token's key).
      const refused = await client.enroll({
        subject: 'CN=intruder',
        key: privateKey,
        challenge: 'wrong',
      });
      assert.equal(refused.status, 'failed');
    });

    // What the admin commands open does not depend on the key type: once, for the CA with three keys.
    if (keyType === 'ec')
      it('store-only admin commands need no PIN; the server issues a request approved without one', async () => {
        // No CERTPOST_PKCS11_PIN and no --pkcs11-pin-file: nothing here may need the token.
        const challenge = certpost(['challenge', 'create', '--data', data, '--profile', 'manual']);
        assert.equal(challenge.code, 0, challenge.stderr);
        const client = createScepClient(fetchTransport(`${server.url}/scep`));
        const { privateKey: key } = generateKeyPairSync('rsa', { modulusLength: 2048 });
        const subject = `CN=held-${keyType},O=Example`;
        const held = await client.enroll({ subject, key, challenge: challenge.stdout.trim() });
        assert.equal(held.status, 'pending');
        if (held.status !== 'pending') return;
        const list = certpost(['requests', 'list', '--data', data, '--json']);
        assert.equal(list.code, 0, list.stderr);
        const { requests } = JSON.parse(list.stdout) as {
          requests: { id: string; subject: string }[];
        };
        const id = requests.find((r) => r.subject === subject)?.id;
        assert.ok(id, list.stdout);
        const approve = certpost(['requests', 'approve', id, '--data', data]);
        assert.equal(approve.code, 0, approve.stderr);
        const issued = await client.poll({
          transactionId: held.transactionId,
          subject,
          key,
          signer: held.signer,
        });
        assert.equal(issued.status, 'issued');
        if (issued.status === 'issued')
          verifyLeaves(data, [issued.certificate.der], `held-${keyType}`);
        const certs = certpost(['certificates', 'list', '--data', data, '--json']);
        assert.equal(certs.code, 0, certs.stderr);
        assert.ok(
          (JSON.parse(certs.stdout) as { certificates: { subject: string }[] }).certificates.some(
            (c) => c.subject === subject,
          ),
        );
      });

    it('the CRL is signed by the token key and lists a certificate revoked without the PIN', async () => {
      const serial = openssl('x509', '-in', `leaf-${keyType}.pem`, '-noout', '-serial')
        .trim()
        .split('=')[1]!
        .toLowerCase()
        .replace(/^(00)+/, '');
      // Revoking writes the store; the server signs the next CRL with its own session.
      const revoke = certpost([
        'certificates',
        'revoke',
        serial,
        '--data',
        data,
        '--reason',
        'keyCompromise',
      ]);
      assert.equal(revoke.code, 0, revoke.stderr);
      const res = await fetch(`${server.url}/crl`);
      assert.equal(res.status, 200);
      writeFileSync(join(dir, `crl-${keyType}.der`), Buffer.from(await res.arrayBuffer()));
      const text = run(
        'openssl',
        [
          'crl',
          '-inform',
          'DER',
          '-in',
          `crl-${keyType}.der`,
          '-CAfile',
          join(data, 'ca', 'issuing.crt'),
          '-noout',
          '-text',
        ],
        { cwd: dir },
      ).toString();
      assert.match(text, new RegExp(`Serial Number: ${serial}`, 'i'));
      const verdict = spawnSync(
        'openssl',
        [
          'crl',
          '-inform',
          'DER',
          '-in',
          `crl-${keyType}.der`,
          '-CAfile',
          join(data, 'ca', 'issuing.crt'),
          '-noout',
        ],
        { cwd: dir, encoding: 'utf8' },
      );
      assert.match(verdict.stderr + verdict.stdout, /verify OK/);
    });

    it('the CA keys cannot be extracted from the token', async () => {
      for (const part of keyType === 'rsa' ? ['root', 'issuing'] : ['root', 'issuing', 'ra']) {
        const ref = readFileSync(join(data, 'ca', `${part}.key-ref`), 'utf8').trim();
        const { token, key } = await openKeyByUri(ref, { pin: hsm.userPin });
        try {
          const p = await token.protection(key);
          assert.deepEqual(
            [p.token, p.sensitive, p.extractable, p.neverExtractable],
            [true, true, false, true],
            part,
          );
        } finally {
          await token.close();
        }
      }
      assertNoPin(server.output(), server.stderr());
    });

    // Once as well, for the same reason.
    if (keyType === 'ec')
      it('commands that sign need the PIN: without it, a clear error and nothing changed', async () => {
        const labelsBefore = await tokenLabels();
        const roll = certpost(['ca', 'rollover', '--data', data]);
        assert.equal(roll.code, 4, roll.stderr);
        assert.match(roll.stderr, /^certpost: the token needs a PIN: token "certpost-ca"/);
        assert.ok(!existsSync(join(data, 'ca', 'next')));
        assert.deepEqual(await tokenLabels(), labelsBefore);
        // doctor runs, and says which checks the missing PIN kept from signing.
        const doctor = certpost(['doctor', '--data', data, '--json']);
        assert.equal(doctor.code, 13, doctor.stderr);
        const { checks } = JSON.parse(doctor.stdout) as {
          checks: { id: string; status: string; summary: string }[];
        };
        const keys = checks.find((c) => c.id === 'ca-keys');
        assert.equal(keys?.status, 'fail');
        assert.match(keys.summary, /needs a PIN/);
        assert.equal(checks.find((c) => c.id === 'database')?.status, 'ok');
      });

    it('rollover makes the next issuing key in the token as well', () => {
      const r = certpost(['ca', 'rollover', '--data', data, '--json'], {
        CERTPOST_PKCS11_PIN: hsm.userPin,
      });
      assert.equal(r.code, 0, r.stderr);
      const ref = readFileSync(join(data, 'ca', 'next', 'issuing.key-ref'), 'utf8').trim();
      assert.match(parsePkcs11Uri(ref).object ?? '', new RegExp(`^${prefix}-issuing-\\d{14}$`));
      assert.match(
        openssl(
          'verify',
          '-CAfile',
          join(data, 'ca', 'root.crt'),
          join(data, 'ca', 'next', 'issuing.crt'),
        ),
        /OK/,
      );
      const activate = certpost(['ca', 'activate-next', '--data', data]);
      assert.equal(activate.code, 0, activate.stderr);
    });
  });
}

/** An EC root and an EC issuing CA made by openssl, as a PFX with the chain (password `pfx`). */
const opensslEcCa = () =>
  opensslCaHierarchy({
    newkey: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'],
    issuingKu: 'digitalSignature,keyCertSign,cRLSign',
    root: '/O=Contoso/CN=Contoso Root',
    issuing: '/O=Contoso/CN=Contoso Issuing CA',
    pfxPassword: 'pfx',
  }).p('ca.pfx');

/** `certpost ca import PFX --pkcs11 URI(prefix)` into `data`, with the PIN. */
const importInto = (data: string, pfx: string, password: string, prefix: string) =>
  certpost(
    ['ca', 'import', pfx, '-p', password, '--data', data, '--pkcs11', uriFor(prefix), '--json'],
    { CERTPOST_PKCS11_PIN: hsm.userPin },
  );

const importData = () => join(dir, 'data-import');

describe('a CA imported into the token (ca import --pkcs11)', () => {
  let pfx = '';

  it('takes the key in (sensitive, not extractable) and makes the RA key there; nothing on disk', async () => {
    pfx = opensslEcCa();
    const r = importInto(importData(), pfx, 'pfx', 'e2e-import');
    assert.equal(r.code, 0, r.stderr);
    assertNoPin(r.stdout, r.stderr);
    const { certificates } = JSON.parse(r.stdout) as {
      certificates: { subject: string; key?: string }[];
    };
    assert.deepEqual(
      certificates.map((c) => [c.subject, c.key && parsePkcs11Uri(c.key).object]),
      [
        ['CN=Contoso Root,O=Contoso', undefined],
        ['CN=Contoso Issuing CA,O=Contoso', 'e2e-import-issuing'],
        ['CN=Contoso Issuing CA SCEP RA,O=Contoso', 'e2e-import-ra'],
      ],
    );
    assert.deepEqual(
      readdirSync(join(importData(), 'ca'))
        .filter((f) => f.includes('key') || f === 'passphrase')
        .toSorted(),
      ['issuing.key-ref', 'ra.key-ref'],
      'no key file and no passphrase in the data directory',
    );
    hsm.assertUnreadable('e2e-import-issuing'); // EC: CKA_VALUE is CKR_ATTRIBUTE_SENSITIVE
    hsm.assertUnreadable('e2e-import-ra');
    const ref = readFileSync(join(importData(), 'ca', 'issuing.key-ref'), 'utf8').trim();
    const { token, key } = await openKeyByUri(ref, { pin: hsm.userPin });
    try {
      const p = await token.protection(key);
      assert.deepEqual(
        [p.sensitive, p.extractable, p.neverExtractable],
        [true, false, false],
        'an imported key says it has been outside the token',
      );
    } finally {
      await token.close();
    }
  });

  it('the imported CA issues over SCEP: the token decrypts with the RA key and signs with the CA key', async () => {
    const server = await spawnServe(
      ['--data', importData(), '--scep-challenge', 'import-secret', '--pkcs11-pin-file', pinFile],
      { env },
    );
    servers.push(server);
    const client = createScepClient(fetchTransport(`${server.url}/scep`));
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const r = await client.enroll({
      subject: 'CN=device-imported,O=Contoso',
      key: privateKey,
      challenge: 'import-secret',
    });
    assert.equal(r.status, 'issued');
    if (r.status === 'issued') verifyLeaves(importData(), [r.certificate.der], 'imported');
    assert.equal(await server.stop(), 0);
  });

  it('a refused import leaves the token and the data directory as they were', async () => {
    const labelsBefore = await tokenLabels();
    const other = join(dir, 'data-import-2');
    const wrongPassword = importInto(other, pfx, 'nope', 'e2e-import-2');
    assert.equal(wrongPassword.code, 4, wrongPassword.stderr);
    // The labels are taken: refused by the token before anything is made.
    const taken = importInto(other, pfx, 'pfx', 'e2e-import');
    assert.equal(taken.code, 12, taken.stderr);
    assert.match(taken.stderr, /already exists in the token/);
    assert.ok(!existsSync(join(other, 'ca', 'issuing.crt')));
    assert.deepEqual(await tokenLabels(), labelsBefore);
  });
});

describe('two worker processes on one token (serve --workers 2)', () => {
  it('each opens its own sessions: enrollments spread over both are decrypted and signed by the token', async () => {
    const data = join(dir, 'data-workers');
    // The PIN's file named in the URI: the key references keep it, and each worker reads it.
    const init = certpost([
      'ca',
      'init',
      '--data',
      data,
      '--pkcs11',
      `${uriFor('e2e-workers')}&pin-source=${pinFile}`,
    ]);
    assert.equal(init.code, 0, init.stderr);
    const ref = parsePkcs11Uri(readFileSync(join(data, 'ca', 'issuing.key-ref'), 'utf8').trim());
    assert.equal(ref.pinSource, pinFile);
    const server = await spawnServe(
      ['--data', data, '--workers', '2', '--scep-challenge', 'w', '--log-level', 'info'],
      { env },
    );
    servers.push(server);
    assert.equal(server.listening['workers'], 2);
    const issued: Uint8Array[] = [];
    /** Worker pids that answered a PKIOperation (POST): each decrypted and signed in the token. */
    const answeredBy = () =>
      new Set(
        server
          .output()
          .split('\n')
          .filter((l) => l.includes('"method":"POST"') && l.includes('"route":"/scep"'))
          .map((l) => (JSON.parse(l) as { pid: number }).pid),
      );
    // Connections go to the workers in turn; a few rounds make sure both have had some. Two
    // wrong challenges in the first round only: the server refuses a client address after 10
    // failed challenges a minute, and a right one must not be refused for that here.
    for (let round = 0; round < 6 && (round < 1 || answeredBy().size < 2); round++) {
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => {
          const client = createScepClient(fetchTransport(`${server.url}/scep`));
          const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
          return client.enroll({
            subject: `CN=worker-${round}-${i},O=Example`,
            key: privateKey,
            challenge: round === 0 && i < 2 ? 'wrong' : 'w',
          });
        }),
      );
      for (const [i, r] of results.entries()) {
        assert.equal(r.status, round === 0 && i < 2 ? 'failed' : 'issued');
        if (r.status === 'issued') issued.push(r.certificate.der);
      }
    }
    const pids = answeredBy();
    assert.equal(pids.size, 2, `answered by ${[...pids].join(', ')}`);
    assert.ok(!pids.has(server.listening['pid'] as number), 'workers, not the primary');
    verifyLeaves(data, issued, 'worker');
    const serials = issued.map((der) => new X509Certificate(der).serialNumber);
    assert.equal(new Set(serials).size, serials.length);
    assertNoPin(server.output(), server.stderr());
    assert.equal(await server.stop(), 0);
  });
});

describe('the token afterwards', () => {
  it('holds every CA key, each with its implicit-rejection secret for the RSA ones', async () => {
    const token = await openToken({ module: hsm.module, token: hsm.label, pin: hsm.userPin });
    try {
      const keys = await token.listKeys();
      const labels = keys.map((k) => k.objectLabel);
      for (const l of [
        'e2e-rsa-root',
        'e2e-rsa-issuing',
        'e2e-ec-root',
        'e2e-ec-ra',
        'e2e-import-issuing',
        'e2e-import-ra',
        'e2e-workers-issuing',
      ])
        assert.ok(labels.includes(l), l);
      assert.ok(
        !labels.some((l) => /^e2e-(rsa|ec)-x|^e2e-import-2/.test(l)),
        'refused commands left no key',
      );
      const secrets = hsm.pkcs11Tool(['--list-objects', '--type', 'secrkey']);
      assert.equal(
        secrets.match(/certpost implicit rejection/g)?.length,
        keys.filter((k) => k.type === 'rsa').length,
      );
    } finally {
      await token.close();
    }
  });
});
