/**
 * The device agent through SyncML, as a server drives it: certificate stores
 * (RootCATrustedCertificates, CertificateStore), PFX installs with each KeyLocation (1 and 2
 * into a SoftHSM2 token acting as the TPM) and both password encryption types, Hello PINs,
 * Atomic rollback, and the state surviving a restart.
 * Certificates and PFX files are made by openssl, so what we accept is what the world writes.
 */
import assert from 'node:assert/strict';
import { createPrivateKey, verify, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildEnvelopedData } from '../pki/cms.ts';
import { signWith } from '../pki/key-ref.ts';
import { parseCertificate } from '../pki/x509.ts';
import { createSoftHsmToken, type SoftHsmToken } from '../testing/softhsm.ts';
import { run, tempDir } from '../testing/tools.ts';
import { DeviceAgent } from './agent.ts';
import { DEVICE_ERRORS, type DeviceErrorCode } from './errors.ts';
import { thumbprintOf } from './stores.ts';
import { openTpm } from './tpm.ts';
import { cmd, serverMessage, summarise } from './testing.ts';

const DEV = './Device/Vendor/MSFT';
const USER = './User/Vendor/MSFT';
let work = '';
const openssl = (...args: string[]) => run('openssl', args, { cwd: work });

interface Made {
  der: Uint8Array;
  b64: string;
  hash: string;
}

function made(pem: string): Made {
  const der = new Uint8Array(openssl('x509', '-in', pem, '-outform', 'DER'));
  return { der, b64: Buffer.from(der).toString('base64'), hash: thumbprintOf(der) };
}

let root: Made;
let leaf: Made;
let pfxB64 = '';
const PFX_PASSWORD = 'pfx-Pa55 wörd';

before(() => {
  work = tempDir();
  openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'root.key',
    '-out',
    'root.pem',
    '-subj',
    '/CN=Device Test Root',
    '-days',
    '30',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  );
  root = made(join(work, 'root.pem'));
  ({ cert: leaf, b64: pfxB64 } = issuePfx('leaf', ['-newkey', 'rsa:2048'], 'alice@example.test'));
});

/**
 * A PFX made by openssl: a new key (`newkey`: openssl req's key options), its certificate for
 * `/CN=<cn>` issued by the test root, and the root; files `<name>.{key,pem,pfx}` in `work`.
 */
function issuePfx(
  name: string,
  newkey: readonly string[],
  cn: string,
): { cert: Made; b64: string } {
  openssl(
    'req',
    ...newkey,
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    `/CN=${cn}`,
  );
  openssl(
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    'root.pem',
    '-CAkey',
    'root.key',
    '-out',
    `${name}.pem`,
    '-days',
    '10',
  );
  openssl(
    'pkcs12',
    '-export',
    '-inkey',
    `${name}.key`,
    '-in',
    `${name}.pem`,
    '-certfile',
    'root.pem',
    '-out',
    `${name}.pfx`,
    '-passout',
    `pass:${PFX_PASSWORD}`,
  );
  return {
    cert: made(join(work, `${name}.pem`)),
    b64: readFileSync(join(work, `${name}.pfx`)).toString('base64'),
  };
}

const agents: DeviceAgent[] = [];
after(async () => {
  for (const a of agents) await a.close();
});

async function device(o: Parameters<typeof DeviceAgent.open>[1] = {}, dir = tempDir()) {
  const a = await DeviceAgent.open(dir, o);
  agents.push(a);
  return a;
}

const send = async (a: DeviceAgent, ...commands: string[]) =>
  summarise(await a.handle(serverMessage(commands.join(''))));

describe('RootCATrustedCertificates and CertificateStore', () => {
  it('adds a root by its hash, reads the computed fields, lists it in both trees, deletes it', async () => {
    const a = await device();
    const node = `${DEV}/RootCATrustedCertificates/Root/${root.hash}`;
    const r = await send(
      a,
      cmd.add(`${node}/EncodedCertificate`, root.b64, 'b64'),
      cmd.get(`${node}/IssuedTo`),
      cmd.get(`${node}/ValidTo`),
      cmd.get(`${DEV}/RootCATrustedCertificates/Root`),
      cmd.get(`${DEV}/CertificateStore/ROOT/System`),
      cmd.add(`${node}/EncodedCertificate`, root.b64, 'b64'),
    );
    assert.deepEqual(r.statuses, [
      'Add=200',
      'Get=200',
      'Get=200',
      'Get=200',
      'Get=200',
      'Add=418',
    ]);
    assert.equal(r.results.get(`${node}/IssuedTo`), 'Device Test Root');
    assert.match(r.results.get(`${node}/ValidTo`)!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal(r.results.get(`${DEV}/RootCATrustedCertificates/Root`), root.hash);
    assert.equal(r.results.get(`${DEV}/CertificateStore/ROOT/System`), root.hash);
    const legacy = await send(a, cmd.get('./Vendor/MSFT/CertificateStore/ROOT/System'));
    assert.equal(
      legacy.results.get('./Vendor/MSFT/CertificateStore/ROOT/System'),
      root.hash,
      'Results name nodes as asked',
    );
    const d = await send(a, cmd.delete(node), cmd.get(`${node}/IssuedTo`));
    assert.deepEqual(d.statuses, ['Delete=200', 'Get=404']);
    assert.equal(a.certificates.all().length, 0);
  });

  it('refuses a hash that is not the certificate’s, data that is not a certificate, and a user Root', async () => {
    const a = await device();
    const wrong = 'AB'.repeat(20);
    const r = await send(
      a,
      cmd.add(`${DEV}/RootCATrustedCertificates/CA/${wrong}/EncodedCertificate`, root.b64, 'b64'),
      cmd.add(`${DEV}/RootCATrustedCertificates/CA/${root.hash}/EncodedCertificate`, 'AAAA', 'b64'),
      cmd.add(
        `${USER}/RootCATrustedCertificates/Root/${root.hash}/EncodedCertificate`,
        root.b64,
        'b64',
      ),
      cmd.add(
        `${USER}/RootCATrustedCertificates/CA/${root.hash}/EncodedCertificate`,
        root.b64,
        'b64',
      ),
    );
    // The user tree has no Root store in the DDF: 404.
    assert.deepEqual(r.statuses, ['Add=400', 'Add=400', 'Add=404', 'Add=200']);
    assert.deepEqual(
      a.certificates.all().map((c) => `${c.scope}/${c.store}`),
      ['user/CA'],
    );
  });

  it('rolls back an Atomic: a certificate added before a failing command is gone (507/216)', async () => {
    const a = await device();
    const r = await send(
      a,
      cmd.atomic(
        cmd.add(
          `${DEV}/RootCATrustedCertificates/Root/${root.hash}/EncodedCertificate`,
          root.b64,
          'b64',
        ),
        cmd.add(`${DEV}/RootCATrustedCertificates/Nope/x/EncodedCertificate`, root.b64, 'b64'),
      ),
    );
    assert.deepEqual(r.statuses, ['Atomic=507', 'Add=216', 'Add=404']);
    assert.equal(a.certificates.all().length, 0);
  });

  it('keeps its state across a restart (one file, written before the reply)', async () => {
    const dir = tempDir();
    const a = await device({}, dir);
    await send(
      a,
      cmd.add(
        `${DEV}/RootCATrustedCertificates/TrustedPeople/${leaf.hash}/EncodedCertificate`,
        leaf.b64,
        'b64',
      ),
    );
    await a.close();
    const b = await device({}, dir);
    const r = await send(b, cmd.get(`${DEV}/RootCATrustedCertificates/TrustedPeople`));
    assert.equal(r.results.get(`${DEV}/RootCATrustedCertificates/TrustedPeople`), leaf.hash);
    assert.equal(b.id, a.id);
  });

  it('a second agent on the same state directory waits, then reports it busy', async () => {
    const dir = tempDir();
    await device({}, dir);
    await assert.rejects(DeviceAgent.open(dir, { lockWaitMs: 100 }), { code: 'ERR_DEVICE_BUSY' });
  });
});

const pfxNode = (scope: string, id: string) =>
  `${scope}/ClientCertificateInstall/PFXCertInstall/${id}`;

function pfxCommands(
  node: string,
  o: {
    location?: number;
    exportable?: boolean;
    password?: string;
    type?: number;
    container?: string;
    /** The PFX, base64 (default: the RSA leaf's). */
    blob?: string;
  },
) {
  return [
    ...(o.location !== undefined
      ? [cmd.add(`${node}/KeyLocation`, String(o.location), 'int')]
      : []),
    ...(o.container !== undefined ? [cmd.add(`${node}/ContainerName`, o.container, 'chr')] : []),
    ...(o.type !== undefined
      ? [cmd.add(`${node}/PFXCertPasswordEncryptionType`, String(o.type), 'int')]
      : []),
    cmd.add(`${node}/PFXCertPassword`, o.password ?? PFX_PASSWORD, 'chr'),
    ...(o.exportable !== undefined
      ? [cmd.add(`${node}/PFXKeyExportable`, String(o.exportable), 'bool')]
      : []),
    cmd.add(`${node}/PFXCertBlob`, o.blob ?? pfxB64, 'chr'),
  ];
}

/**
 * Sends a PFX install outside an Atomic and checks that it fails: the blob's Add gets
 * `status`, and the node's Status the HRESULT of `code`.
 */
async function assertInstallFails(
  a: DeviceAgent,
  node: string,
  o: Parameters<typeof pfxCommands>[1],
  status: 'Add=400' | 'Add=500',
  code: DeviceErrorCode,
): Promise<void> {
  const r = await send(a, ...pfxCommands(node, o), cmd.get(`${node}/Status`));
  assert.equal(r.statuses.at(-2), status, node);
  assert.equal(Number(r.results.get(`${node}/Status`)), DEVICE_ERRORS[code].hresult | 0, node);
}

describe('ClientCertificateInstall/PFXCertInstall', () => {
  it('KeyLocation 3: installs the certificate with an exportable software key in My; the chain’s root is not trusted', async () => {
    const a = await device();
    const node = pfxNode(USER, 'smime');
    const r = await send(
      a,
      cmd.atomic(...pfxCommands(node, { location: 3 })),
      cmd.get(`${node}/Thumbprint`),
      cmd.get(`${node}/Status`),
      cmd.get(`${node}/PFXCertPassword`),
    );
    assert.deepEqual(r.statuses.slice(0, 1), ['Atomic=200']);
    assert.deepEqual(
      r.statuses.slice(-3),
      ['Get=200', 'Get=200', 'Get=404'],
      'the clear password is forgotten',
    );
    assert.equal(r.results.get(`${node}/Thumbprint`), leaf.hash);
    assert.equal(r.results.get(`${node}/Status`), '0');
    const mine = a.certificates.list('user', 'My');
    assert.equal(mine.length, 1);
    assert.equal(a.certificates.list('device', 'Root').length, 0);
    const key = a.keys.find(mine[0]!.keyId!)!;
    assert.equal(key.provider, 'software');
    assert.equal(key.exportable, true);
    const exported = createPrivateKey({
      key: Buffer.from(a.keys.exportKey(key.id)),
      format: 'der',
      type: 'pkcs8',
    });
    assert.ok(exported.equals(createPrivateKey(readFileSync(join(work, 'leaf.key')))));
    // The key is encrypted at rest: the state file holds no clear PKCS#8.
    const state = readFileSync(join(a.store.dir, 'state.json'), 'utf8');
    assert.match(state, /BEGIN ENCRYPTED PRIVATE KEY/);
    assert.doesNotMatch(state, new RegExp(PFX_PASSWORD));
    // It shows in the legacy tree's user store, where the server can delete it with its key.
    const legacy = `${DEV}/CertificateStore/MY/User`;
    const l = await send(a, cmd.get(legacy), cmd.delete(`${legacy}/${leaf.hash}`));
    assert.equal(l.results.get(legacy), leaf.hash);
    assert.deepEqual(l.statuses, ['Get=200', 'Delete=200']);
    assert.equal(a.store.data.keys.length, 0, 'the key went with its certificate');
  });

  it('installs when the Atomic ends, whatever the order (Microsoft’s example sends the blob first)', async () => {
    const a = await device();
    const node = pfxNode(USER, 'order');
    const [blob, ...rest] = pfxCommands(node, { location: 3 }).toReversed();
    const r = await send(a, cmd.atomic(blob!, ...rest), cmd.get(`${node}/Thumbprint`));
    assert.equal(r.statuses[0], 'Atomic=200');
    assert.equal(r.results.get(`${node}/Thumbprint`), leaf.hash);
    // A failure found at the end fails the blob's command and rolls the whole Atomic back.
    const b = await device();
    const node2 = pfxNode(USER, 'order2');
    const [blob2, ...rest2] = pfxCommands(node2, { location: 3, password: 'wrong' }).toReversed();
    const r2 = await send(b, cmd.atomic(blob2!, ...rest2), cmd.get(`${node2}/Status`));
    assert.equal(r2.statuses[0], 'Atomic=507');
    assert.equal(r2.statuses[1], 'Add=500');
    assert.ok(
      r2.statuses.slice(2, -1).every((x) => x.endsWith('=216')),
      r2.statuses.join(),
    );
    assert.equal(
      Number(r2.results.get(`${node2}/Status`)),
      DEVICE_ERRORS.ERR_DEVICE_PFX_PASSWORD.hresult | 0,
    );
    assert.equal(b.certificates.all().length, 0);
    // The failing command is found by its URI also when the server wrote `./Vendor/…`.
    const c = await device();
    const node3 = pfxNode('./Vendor/MSFT', 'order3');
    const [blob3, ...rest3] = pfxCommands(node3, { location: 3, password: 'wrong' }).toReversed();
    const r3 = await send(c, cmd.atomic(blob3!, ...rest3));
    assert.deepEqual(r3.statuses.slice(0, 3), ['Atomic=507', 'Add=500', 'Add=216']);
  });

  it('KeyLocation 2 without a TPM: a software key, not exportable; exportable true is refused (400)', async () => {
    const a = await device();
    const r = await send(a, cmd.atomic(...pfxCommands(pfxNode(DEV, 'p2'), { location: 2 })));
    assert.deepEqual(r.statuses[0], 'Atomic=200');
    const key = a.keys.find(a.certificates.list('device', 'My')[0]!.keyId!)!;
    assert.equal(key.exportable, false);
    assert.throws(() => a.keys.exportKey(key.id), { code: 'ERR_DEVICE_NOT_EXPORTABLE' });
    await assertInstallFails(
      await device(),
      pfxNode(DEV, 'p2x'),
      { location: 2, exportable: true },
      'Add=400',
      'ERR_DEVICE_BAD_PARAMETER',
    );
  });

  it('KeyLocation 1 (TPM or fail) on a device without a TPM fails and installs nothing', async () => {
    const a = await device();
    await assertInstallFails(
      a,
      pfxNode(DEV, 'p1'),
      { location: 1, exportable: false },
      'Add=500',
      'ERR_DEVICE_NO_TPM',
    );
    assert.equal(a.certificates.all().length, 0);
    assert.equal(a.store.data.keys.length, 0);
  });

  it('a wrong password fails with ERROR_INVALID_PASSWORD and changes nothing', async () => {
    const a = await device();
    await assertInstallFails(
      a,
      pfxNode(USER, 'wrong'),
      { location: 3, password: 'nope' },
      'Add=500',
      'ERR_DEVICE_PFX_PASSWORD',
    );
    assert.equal(a.certificates.all().length, 0);
  });

  it('PFXCertPasswordEncryptionType 1: the password is a CMS envelope to the MDM client certificate', async () => {
    const a = await device();
    // The MDM (WSTEP) client certificate and its key, as enrollment would have installed them.
    const mdmKey = createPrivateKey(readFileSync(join(work, 'root.key')));
    const stored = await a.keys.importKey(mdmKey, 3, { exportable: false });
    a.certificates.add({
      scope: 'device',
      store: 'My',
      der: root.der,
      source: { kind: 'wstep' },
      keyId: stored.entry.id,
    });
    const envelope = buildEnvelopedData(
      Buffer.from(PFX_PASSWORD, 'utf8'),
      parseCertificate(root.der),
      'aes-256-cbc',
    );
    const node = pfxNode(USER, 'enc');
    const r = await send(
      a,
      cmd.atomic(
        ...pfxCommands(node, {
          location: 3,
          type: 1,
          password: Buffer.from(envelope).toString('base64'),
        }),
      ),
      cmd.get(`${node}/Thumbprint`),
    );
    assert.equal(r.statuses[0], 'Atomic=200');
    assert.equal(r.results.get(`${node}/Thumbprint`), leaf.hash);
    // Encrypted to someone else: refused as a wrong password.
    const other = buildEnvelopedData(
      Buffer.from(PFX_PASSWORD),
      parseCertificate(leaf.der),
      'aes-128-cbc',
    );
    const node2 = pfxNode(USER, 'enc2');
    const r2 = await send(
      a,
      ...pfxCommands(node2, {
        location: 3,
        type: 1,
        password: Buffer.from(other).toString('base64'),
      }),
      cmd.get(`${node2}/Status`),
    );
    assert.equal(r2.statuses.at(-2), 'Add=500');
  });

  it('KeyLocation 4 (Hello): needs a ContainerName; the key is PIN-guarded and a wrong PIN fails, then locks', async () => {
    let pin = '1234';
    const a = await device({ pin: async () => pin });
    const noContainer = await send(
      a,
      ...pfxCommands(pfxNode(USER, 'h0'), { location: 4, exportable: false }),
    );
    assert.equal(noContainer.statuses.at(-1), 'Add=400');
    const r = await send(
      a,
      cmd.atomic(
        ...pfxCommands(pfxNode(USER, 'h1'), { location: 4, exportable: false, container: 'ngc-1' }),
      ),
    );
    assert.equal(r.statuses[0], 'Atomic=200');
    const entry = a.certificates.list('user', 'My')[0]!;
    assert.equal(a.keys.find(entry.keyId!)!.provider, 'hello');
    const key = await a.keys.open(entry.keyId!);
    const sig = await (key as { sign: (d: Uint8Array, h: 'sha256') => Promise<Uint8Array> }).sign(
      Buffer.from('x'),
      'sha256',
    );
    assert.ok(sig.length > 0);
    pin = '9999';
    for (let i = 1; i < 5; i++)
      await assert.rejects(
        (key as { sign: (d: Uint8Array, h: 'sha256') => Promise<Uint8Array> }).sign(
          Buffer.from('x'),
          'sha256',
        ),
        { code: 'ERR_DEVICE_PIN_INCORRECT' },
      );
    await assert.rejects(
      (key as { sign: (d: Uint8Array, h: 'sha256') => Promise<Uint8Array> }).sign(
        Buffer.from('x'),
        'sha256',
      ),
      { code: 'ERR_DEVICE_PIN_LOCKED' },
    );
    pin = '1234';
    await assert.rejects(
      (key as { sign: (d: Uint8Array, h: 'sha256') => Promise<Uint8Array> }).sign(
        Buffer.from('x'),
        'sha256',
      ),
      { code: 'ERR_DEVICE_PIN_LOCKED' },
      'locked stays locked',
    );
  });

  it('Delete removes the certificate and its key; openssl reads the installed certificate', async () => {
    const a = await device();
    const node = pfxNode(DEV, 'del');
    await send(a, cmd.atomic(...pfxCommands(node, { location: 3 })));
    const cert = a.certificates.list('device', 'My')[0]!;
    writeFileSync(join(work, 'installed.der'), Buffer.from(cert.der, 'base64'));
    assert.match(
      openssl('x509', '-inform', 'DER', '-in', 'installed.der', '-noout', '-subject').toString(),
      /alice@example\.test/,
    );
    const r = await send(a, cmd.delete(node), cmd.get(`${node}/Thumbprint`));
    assert.deepEqual(r.statuses, ['Delete=200', 'Get=404']);
    assert.equal(a.certificates.all().length, 0);
    assert.equal(a.store.data.keys.length, 0);
  });
});

describe('device agent: DevInfo and DevDetail', () => {
  it('answers DevInfo and DevDetail Gets, renames itself by DeviceName, refuses other writes', async () => {
    const agent = await DeviceAgent.open(join(tempDir(), 'info'), { name: 'kiosk-1' });
    try {
      const reply = summarise(
        await agent.handle(
          serverMessage(
            cmd.get('./DevInfo/DevId') +
              cmd.get('./DevInfo/DmV') +
              cmd.get('./DevDetail/Ext/Microsoft/DeviceName') +
              cmd.replace('./DevDetail/Ext/Microsoft/DeviceName', 'kiosk-7') +
              cmd.replace('./DevInfo/Man', 'someone') +
              cmd.get('./DevDetail/Ext/Microsoft/DeviceName') +
              cmd.get('./DevDetail/NoSuchNode'),
          ),
        ),
      );
      assert.deepEqual(reply.statuses, [
        'Get=200',
        'Get=200',
        'Get=200',
        'Replace=200',
        'Replace=405',
        'Get=200',
        'Get=404',
      ]);
      assert.equal(reply.results.get('./DevInfo/DevId'), agent.id);
      assert.match(reply.results.get('./DevInfo/DmV') ?? '', /^\d+\.\d+\.\d+/);
      assert.equal(reply.results.get('./DevDetail/Ext/Microsoft/DeviceName'), 'kiosk-7');
      assert.equal(agent.store.data.device.name, 'kiosk-7');
    } finally {
      await agent.close();
    }
  });
});

/** openssl req's options for a new EC key on `curve`. */
const ecKeyOn = (curve: string) => ['-newkey', 'ec', '-pkeyopt', `ec_paramgen_curve:${curve}`];

describe('PFXCertInstall into a PKCS#11 token as the device TPM (SoftHSM2)', () => {
  let hsm: SoftHsmToken;
  let tpm: Awaited<ReturnType<typeof openTpm>>;
  let ec: { cert: Made; b64: string };
  let p521: { cert: Made; b64: string };
  const data = Buffer.from('signed by the device TPM');

  before(async () => {
    hsm = createSoftHsmToken('device-tpm');
    tpm = await openTpm({ module: hsm.module, token: hsm.label, pin: hsm.userPin });
    ec = issuePfx('ec-leaf', ecKeyOn('P-256'), 'bob@example.test');
    p521 = issuePfx('p521-leaf', ecKeyOn('P-521'), 'carol@example.test');
  });

  after(async () => {
    await tpm?.close();
    hsm?.remove();
  });

  /** CKA_LABELs of the token's objects of a type, as OpenSC's pkcs11-tool lists them. */
  const inToken = (type: 'privkey' | 'pubkey' | 'secrkey') =>
    [...hsm.pkcs11Tool(['--list-objects', '--type', type]).matchAll(/label:\s+(\S.*)$/gm)].map(
      (m) => m[1]!.trim(),
    );

  /** The installed certificate's key: in the token, not exportable, signing for the certificate. */
  async function assertTokenKey(a: DeviceAgent, scope: 'device' | 'user', cert: Made) {
    const entry = a.certificates.list(scope, 'My').find((c) => c.thumbprint === cert.hash)!;
    const record = a.keys.find(entry.keyId!)!;
    assert.equal(record.provider, 'tpm');
    assert.equal(record.exportable, false);
    assert.equal(record.pkcs8, undefined, 'no key material in the state');
    assert.throws(() => a.keys.exportKey(record.id), { code: 'ERR_DEVICE_NOT_EXPORTABLE' });
    const label = `certpost-device-${record.tokenId!}`;
    assert.ok(inToken('privkey').includes(label), `${label} is a private key in the token`);
    assert.ok(inToken('pubkey').includes(label), `${label} has its public key in the token`);
    const sig = await signWith(await a.keys.open(record.id), data, 'sha256');
    assert.ok(verify('sha256', data, new X509Certificate(cert.der).publicKey, sig));
    return label;
  }

  it('KeyLocation 1: the PFX key goes into the token, signs there; Delete destroys it', async () => {
    const a = await device({ tpm });
    const node = pfxNode(DEV, 'tpm1');
    const r = await send(
      a,
      cmd.atomic(...pfxCommands(node, { location: 1 })),
      cmd.get(`${node}/Status`),
    );
    assert.equal(r.statuses[0], 'Atomic=200');
    assert.equal(r.results.get(`${node}/Status`), '0');
    const label = await assertTokenKey(a, 'device', leaf);
    assert.ok(inToken('secrkey').includes('certpost implicit rejection'), 'RSA: its IR secret');
    assert.doesNotMatch(readFileSync(join(a.store.dir, 'state.json'), 'utf8'), /PRIVATE KEY/);

    const d = await send(a, cmd.delete(node), cmd.get(`${node}/Thumbprint`));
    assert.deepEqual(d.statuses, ['Delete=200', 'Get=404']);
    assert.equal(a.store.data.keys.length, 0);
    assert.ok(!inToken('privkey').includes(label), 'the private key is destroyed');
    assert.ok(!inToken('pubkey').includes(label), 'so is its public key');
    assert.deepEqual(inToken('secrkey'), [], 'and its implicit-rejection secret');
  });

  it('KeyLocation 2 with a TPM: the key goes into the token too (an EC P-256 PFX)', async () => {
    const a = await device({ tpm });
    const node = pfxNode(USER, 'tpm2');
    const r = await send(
      a,
      cmd.atomic(...pfxCommands(node, { location: 2, blob: ec.b64 })),
      cmd.get(`${node}/Thumbprint`),
    );
    assert.equal(r.statuses[0], 'Atomic=200');
    assert.equal(r.results.get(`${node}/Thumbprint`), ec.cert.hash);
    const label = await assertTokenKey(a, 'user', ec.cert);
    await send(a, cmd.delete(node));
    assert.ok(!inToken('privkey').includes(label));
  });

  it('PFXKeyExportable true with KeyLocation 1 or 2 is refused (400, E_INVALIDARG), as the DDF says', async () => {
    const a = await device({ tpm });
    for (const location of [1, 2])
      await assertInstallFails(
        a,
        pfxNode(DEV, `exportable${location}`),
        { location, exportable: true },
        'Add=400',
        'ERR_DEVICE_BAD_PARAMETER',
      );
    assert.equal(a.certificates.all().length, 0);
    assert.deepEqual(inToken('privkey'), []);
  });

  it('a key the TPM cannot hold (EC P-521): KeyLocation 1 fails with NTE_NOT_SUPPORTED, 2 falls back to software', async () => {
    const a = await device({ tpm });
    await assertInstallFails(
      a,
      pfxNode(DEV, 'p521-1'),
      { location: 1, blob: p521.b64 },
      'Add=500',
      'ERR_DEVICE_TPM_UNSUPPORTED',
    );
    assert.equal(a.certificates.all().length, 0);

    const r2 = await send(
      a,
      cmd.atomic(...pfxCommands(pfxNode(DEV, 'p521-2'), { location: 2, blob: p521.b64 })),
    );
    assert.equal(r2.statuses[0], 'Atomic=200');
    const record = a.keys.find(a.certificates.list('device', 'My')[0]!.keyId!)!;
    assert.equal(record.provider, 'software');
    assert.equal(record.exportable, false);
    assert.deepEqual(inToken('privkey'), []);
  });

  it('an Atomic rolled back after the import leaves no key in the token', async () => {
    const a = await device({ tpm });
    const r = await send(
      a,
      cmd.atomic(
        ...pfxCommands(pfxNode(DEV, 'kept'), { location: 1 }),
        ...pfxCommands(pfxNode(DEV, 'broken'), { location: 1, password: 'wrong' }),
      ),
    );
    assert.equal(r.statuses[0], 'Atomic=507');
    assert.equal(a.certificates.all().length, 0);
    assert.equal(a.store.data.keys.length, 0);
    assert.deepEqual(inToken('privkey'), []);
    assert.deepEqual(inToken('pubkey'), []);
  });
});
