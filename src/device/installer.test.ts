/**
 * The device installer (issue 6, "Must show"): every format installs into the right stores,
 * and every error path (wrong password and retries exhausted, corrupt input, not a
 * certificate, untrusted or expired chain, unconfirmed root, downloads that fail, a TPM import
 * that fails half-way) leaves the state file byte-identical. The PKI is made with openssl at
 * test time (testing/test-pki.ts); downloads go to real HTTP(S) servers on loopback.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttp, type RequestListener, type Server } from 'node:http';
import { createServer as createHttps } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { createSoftHsmToken } from '../testing/softhsm.ts';
import { makeTestPki, PFX_PASSWORD, type TestPki } from '../testing/test-pki.ts';
import { freePort, tempDir } from '../testing/tools.ts';
import { DeviceAgent, type DeviceOptions } from './agent.ts';
import { DeviceError, type DeviceErrorCode } from './errors.ts';
import { loadInstallInput, type InputOptions, type LoadedInput } from './install-input.ts';
import {
  applyInstall,
  reviewInstall,
  type ApplyOptions,
  type PasswordSource,
  type ReviewOptions,
} from './installer.ts';
import { openTpm } from './tpm.ts';

let pki: TestPki;
before(() => {
  pki = makeTestPki();
});

const open = (o: DeviceOptions = {}) => DeviceAgent.open(tempDir(), o);
const stateBytes = (a: DeviceAgent) => readFileSync(join(a.store.dir, 'state.json'));
const inputOptions = (a: DeviceAgent): InputOptions => ({
  trustedRootsPem: () => a.certificates.trustedRootsPem(),
});
const load = (a: DeviceAgent, input: string, o: Partial<InputOptions> = {}) =>
  loadInstallInput(input, { ...inputOptions(a), ...o });

type Options = ReviewOptions & Partial<ApplyOptions>;

/** Loads, reviews and applies (roots confirmed unless said otherwise). */
async function install(a: DeviceAgent, inputs: readonly (string | LoadedInput)[], o: Options = {}) {
  const loaded = await Promise.all(inputs.map((i) => (typeof i === 'string' ? load(a, i) : i)));
  const review = await reviewInstall(a, loaded, o);
  const done = await applyInstall(a, review, { rootsConfirmed: true, ...o });
  return { review, done };
}

/** Where each certificate is, by name (CN) and store: `device/Root root`, `+key` with its key. */
function where(a: DeviceAgent): string[] {
  return a.certificates
    .all()
    .map((c) => {
      const cn = /CN=([^,]+)/.exec(
        a.certificates
          .certificate(c)
          .subject.rdns.flat()
          .map((x) => `${x.type}=${x.value}`)
          .join(','),
      )?.[1];
      return `${c.scope}/${c.store} ${cn}${c.keyId ? ' +key' : ''}`;
    })
    .toSorted();
}

/** A device that already trusts root and knows inter, as after an earlier installation. */
async function trusting(o: DeviceOptions = {}) {
  const a = await open(o);
  await install(a, [pki.path('root.der'), pki.path('inter.pem')]);
  return a;
}

/** Runs `f`, expecting a DeviceError `code` whose message matches, and no change at all. */
async function refused(
  a: DeviceAgent,
  f: () => Promise<unknown>,
  code: DeviceErrorCode,
  message: RegExp,
) {
  const file = stateBytes(a);
  const data = JSON.stringify(a.store.data);
  await assert.rejects(f, (e) => {
    assert.ok(e instanceof DeviceError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    return true;
  });
  assert.deepEqual(stateBytes(a), file, 'state.json is byte-identical');
  assert.equal(JSON.stringify(a.store.data), data, 'and so is the state in memory');
}

const write = (name: string, bytes: Uint8Array | string) => {
  const f = join(tempDir(), name);
  writeFileSync(f, bytes);
  return f;
};

describe('each format goes to the right stores', () => {
  it('.cer (DER) root: Root, only once it is confirmed', async () => {
    const a = await open();
    const review = await reviewInstall(a, [await load(a, pki.path('root.der'))]);
    const [root] = review.report.certificates;
    assert.equal(root!.install.store, 'Root');
    assert.equal(root!.install.newRoot, true);
    assert.equal(root!.trust.status, 'trusted-by-new-root');
    assert.equal(root!.sha1.toUpperCase(), pki.sha1('root'));
    await refused(
      a,
      () => applyInstall(a, review, { rootsConfirmed: false }),
      'ERR_DEVICE_NOT_CONFIRMED',
      /new trusted root "CN=root,O=certpost tests" needs explicit confirmation/,
    );
    const done = await applyInstall(a, review, { rootsConfirmed: true });
    assert.deepEqual(done, [
      {
        scope: 'device',
        store: 'Root',
        subject: 'CN=root,O=certpost tests',
        action: 'install',
        thumbprint: pki.sha1('root'),
      },
    ]);
    assert.deepEqual(where(a), ['device/Root root']);
    assert.deepEqual(a.store.data.certificates[0]!.source, {
      kind: 'user',
      id: pki.path('root.der'),
    });
    // Saved: a second agent on the directory sees it.
    await a.close();
    const b = await DeviceAgent.open(a.store.dir);
    assert.deepEqual(where(b), ['device/Root root']);
    await b.close();
  });

  it('.pem single (an intermediate below a trusted root) and .pem bundle', async () => {
    const a = await trusting();
    assert.deepEqual(where(a), ['device/CA inter', 'device/Root root']);
    const { review } = await install(a, [pki.path('inter.pem')]);
    assert.equal(review.report.certificates[0]!.install.action, 'present');
    assert.equal(review.report.certificates[0]!.trust.status, 'trusted');

    const b = await open();
    const bundle = write(
      'bundle.pem',
      ['root', 'inter', 'bob'].map((n) => readFileSync(pki.path(`${n}.pem`), 'utf8')).join(''),
    );
    const r = await install(b, [bundle]);
    assert.deepEqual(
      r.review.report.certificates.map((c) => [c.install.store, c.trust.status]),
      [
        ['Root', 'trusted-by-new-root'],
        ['CA', 'trusted-by-new-root'],
        ['TrustedPeople', 'trusted-by-new-root'],
      ],
    );
    assert.deepEqual(where(b), ['device/CA inter', 'device/Root root', 'device/TrustedPeople bob']);
    await Promise.all([a.close(), b.close()]);
  });

  it('.p7b with its chain', async () => {
    const p7b = pki.path('chain.p7b');
    pki.openssl('crl2pkcs7', '-nocrl', '-certfile', 'chain.pem', '-certfile', 'bob.pem',
      '-outform', 'DER', '-out', p7b); // prettier-ignore
    const a = await open();
    const { review } = await install(a, [p7b]);
    assert.equal(review.report.sources[0]!.format, 'pkcs7');
    assert.deepEqual(where(a), ['device/CA inter', 'device/Root root', 'device/TrustedPeople bob']);
    await a.close();
  });

  it('.pfx with key and chain: My with a software key, not exportable unless asked', async () => {
    const a = await open();
    const { review, done } = await install(a, [pki.path('alice.pfx')], { password: PFX_PASSWORD });
    const alice = review.report.certificates.find((c) => c.hasPrivateKey)!;
    assert.equal(alice.friendlyName, 'alice');
    assert.equal(alice.install.reason, 'certificate with its private key: personal store');
    assert.deepEqual(where(a), ['device/CA inter', 'device/My alice +key', 'device/Root root']);
    assert.equal(done.find((d) => d.store === 'My')!.key, 'software');
    const entry = a.certificates.find('device', 'My', pki.sha1('alice'))!;
    assert.throws(() => a.keys.exportKey(entry.keyId!), /not exportable/);

    const b = await open();
    await install(b, [pki.path('alice.pfx')], { password: PFX_PASSWORD, exportable: true });
    const mine = b.certificates.find('device', 'My', pki.sha1('alice'))!;
    const exported = write('exported.der', b.keys.exportKey(mine.keyId!));
    assert.deepEqual(
      pki.openssl('pkey', '-inform', 'DER', '-in', exported, '-pubout'),
      pki.openssl('pkey', '-in', 'alice.key', '-pubout'),
    );
    await Promise.all([a.close(), b.close()]);
  });

  it('.eml with several attachments: each reviewed, the PFX with its password', async () => {
    const a = await open();
    const eml = new URL('../mail/testdata/eml/certificates.eml', import.meta.url).pathname;
    const asked: string[] = [];
    const ask: PasswordSource = async ({ source }) => {
      asked.push(source);
      return 'alice-Pa55';
    };
    const { review } = await install(a, [eml], { ask });
    assert.deepEqual(asked, [`${eml} › alice.pfx`]);
    assert.deepEqual(
      review.report.sources.map((s) => [s.name.slice(eml.length), s.format]),
      [
        [' › root.cer', 'der'],
        [' › intermediate.p7c', 'pkcs7'],
        [' › alice.pfx', 'pkcs12'],
        [' › attachment-4', 'pem'],
      ],
    );
    assert.deepEqual(where(a), [
      'device/CA Vector Issuing CA',
      'device/My Alice +key',
      'device/Root Vector Root',
      'device/TrustedPeople Bob',
    ]);
    await a.close();
  });

  it('user scope: the identity and its CA in the user stores, the root in the device Root', async () => {
    const a = await open();
    const { review } = await install(a, [pki.path('alice.pfx')], {
      password: PFX_PASSWORD,
      scope: 'user',
    });
    assert.match(review.report.warnings.join('\n'), /no user-scope Root store/);
    assert.deepEqual(where(a), ['device/Root root', 'user/CA inter', 'user/My alice +key']);
    await a.close();
  });

  it('a certificate already there is left alone; arriving with its key, it replaces the copy without', async () => {
    const a = await trusting();
    await install(a, [pki.path('alice.pem')], { store: 'My' });
    assert.deepEqual(where(a), ['device/CA inter', 'device/My alice', 'device/Root root']);
    const { done } = await install(a, [pki.path('alice.pfx')], { password: PFX_PASSWORD });
    assert.deepEqual(
      done.map((d) => `${d.store} ${d.action}`),
      ['My replace', 'CA present', 'Root present'],
    );
    assert.deepEqual(where(a), ['device/CA inter', 'device/My alice +key', 'device/Root root']);
    await a.close();
  });
});

describe('every error path leaves the state as it was', () => {
  it('a wrong password given up front fails at once (no question)', async () => {
    const a = await trusting();
    let asked = 0;
    await refused(
      a,
      () =>
        install(a, [pki.path('alice.pfx')], {
          password: 'wrong',
          ask: async () => {
            asked++;
            return PFX_PASSWORD;
          },
        }),
      'ERR_DEVICE_PFX_PASSWORD',
      /^wrong password for .*alice\.pfx$/,
    );
    assert.equal(asked, 0);
    await a.close();
  });

  it('asked passwords: three wrong answers exhaust the retries; a right one on the way installs', async () => {
    const a = await trusting();
    const requests: string[] = [];
    const answers =
      (...list: string[]): PasswordSource =>
      async ({ attempt, wrong }) => {
        requests.push(`${attempt}${wrong ? ' wrong' : ''}`);
        return list[attempt - 1];
      };
    await refused(
      a,
      () => install(a, [pki.path('alice.pfx')], { ask: answers('a', 'b', 'c', PFX_PASSWORD) }),
      'ERR_DEVICE_PFX_PASSWORD',
      /wrong password for .*alice\.pfx \(3 attempts\)/,
    );
    assert.deepEqual(requests, ['1', '2 wrong', '3 wrong']);
    requests.length = 0;
    await install(a, [pki.path('alice.pfx')], { ask: answers('a', PFX_PASSWORD) });
    assert.deepEqual(requests, ['1', '2 wrong']);
    assert.ok(a.certificates.find('device', 'My', pki.sha1('alice')));
    await a.close();
  });

  it('no password and nobody to ask', async () => {
    const a = await trusting();
    await refused(
      a,
      () => install(a, [pki.path('alice.pfx')]),
      'ERR_DEVICE_PFX_PASSWORD',
      /alice\.pfx is protected by a password, and none was given/,
    );
    await a.close();
  });

  it('corrupt files: a truncated certificate, a PFX whose integrity check fails', async () => {
    const a = await trusting();
    const der = pki.bytes('bob.der');
    await refused(
      a,
      () => install(a, [write('bob.cer', der.subarray(0, der.length - 20))]),
      'ERR_DEVICE_BAD_CERTIFICATE',
      /bob\.cer is damaged: the input is truncated/,
    );
    const pfx = pki.bytes('alice.pfx');
    pfx[pfx.length - 6]! ^= 0x01; // a byte of the MAC salt
    await refused(
      a,
      () => install(a, [write('alice.pfx', pfx)], { password: PFX_PASSWORD }),
      'ERR_DEVICE_PFX_MALFORMED',
      /alice\.pfx was modified/,
    );
    await a.close();
  });

  it('not a certificate: text, a certificate request, a key alone, a message without one', async () => {
    const a = await trusting();
    await refused(
      a,
      () => install(a, [write('photo.cer', 'GIF89a, not really')]),
      'ERR_DEVICE_NOT_A_CERTIFICATE',
      /photo\.cer is not a certificate/,
    );
    await refused(
      a,
      () => install(a, [pki.path('bob.csr')]),
      'ERR_DEVICE_NOT_A_CERTIFICATE',
      /bob\.csr holds a certificate request, not a certificate/,
    );
    await refused(
      a,
      () => install(a, [pki.path('bob.key')]),
      'ERR_DEVICE_NOT_A_CERTIFICATE',
      /no certificate in .*bob\.key \(only private keys\)/,
    );
    const none = new URL('../mail/testdata/eml/no-certificate.eml', import.meta.url).pathname;
    await assert.rejects(() => install(a, [none]), { code: 'ERR_EML_NO_CERTIFICATE' });
    const corrupt = new URL('../mail/testdata/eml/corrupt-attachment.eml', import.meta.url)
      .pathname;
    await refused(
      a,
      () => install(a, [corrupt]),
      'ERR_DEVICE_NOT_A_CERTIFICATE',
      /corrupt-attachment\.eml › broken\.cer is not a certificate/,
    );
    await a.close();
  });

  it('an untrusted chain is refused; the same with its root in the input installs once the root is confirmed', async () => {
    const a = await trusting();
    await refused(
      a,
      () => install(a, [pki.path('stranger.pem')]),
      'ERR_DEVICE_UNTRUSTED',
      /nothing installed: "CN=stranger,O=certpost tests" \(for TrustedPeople\): not trusted: .*issuer "CN=other-root,O=certpost tests" is not among/,
    );
    const both = write(
      'both.pem',
      readFileSync(pki.path('other-root.pem'), 'utf8') +
        readFileSync(pki.path('stranger.pem'), 'utf8'),
    );
    const review = await reviewInstall(a, [await load(a, both)]);
    assert.deepEqual(
      review.report.certificates.map((c) => c.trust.status),
      ['trusted-by-new-root', 'trusted-by-new-root'],
    );
    await refused(
      a,
      () => applyInstall(a, review, { rootsConfirmed: false }),
      'ERR_DEVICE_NOT_CONFIRMED',
      /other-root/,
    );
    await applyInstall(a, review, { rootsConfirmed: true });
    assert.ok(a.certificates.find('device', 'TrustedPeople', pki.sha1('stranger')));
    await a.close();
  });

  it('allowUntrusted installs what the rule refuses; UntrustedCertificates needs no trust', async () => {
    const a = await trusting();
    await install(a, [pki.path('stranger.pem')], { allowUntrusted: true });
    assert.ok(a.certificates.find('device', 'TrustedPeople', pki.sha1('stranger')));
    const b = await open();
    await install(b, [pki.path('self.pem')], { store: 'UntrustedCertificates' });
    assert.deepEqual(where(b), ['device/UntrustedCertificates self']);
    await Promise.all([a.close(), b.close()]);
  });

  it('an expired certificate is refused as expired', async () => {
    const a = await trusting();
    const later = new Date(Date.now() + 2 * 86_400_000);
    await refused(
      a,
      () => install(a, [pki.path('brief.pem')], { at: later }),
      'ERR_DEVICE_EXPIRED',
      /"CN=brief,O=certpost tests" \(for TrustedPeople\): not trusted: .*expired on/,
    );
    await a.close();
  });

  it('a self-signed root whose signature does not verify is no new root', async () => {
    const a = await open();
    const der = pki.bytes('other-root.der');
    der[der.length - 10]! ^= 0x01; // inside the signature
    const review = await reviewInstall(a, [await load(a, write('forged.cer', der))]);
    assert.equal(review.report.certificates[0]!.install.newRoot, false);
    assert.match(review.report.warnings.join('\n'), /self-signature does not verify/);
    await refused(
      a,
      () => applyInstall(a, review, { rootsConfirmed: true }),
      'ERR_DEVICE_UNTRUSTED',
      /other-root/,
    );
    await a.close();
  });

  it('a TPM import that fails half-way: the state and the token are as before', async () => {
    const hsm = createSoftHsmToken('installer-tpm');
    const tpm = await openTpm({ module: hsm.module, token: hsm.label, pin: hsm.userPin });
    try {
      const a = await trusting({ tpm });
      const objects = () => hsm.pkcs11Tool(['--list-objects', '--type', 'privkey']);
      assert.doesNotMatch(objects(), /Private Key Object/);
      // dave's RSA key goes into the token, then carol's P-521 key cannot.
      await refused(
        a,
        () =>
          install(a, [pki.path('dave.pfx'), pki.path('carol.pfx')], {
            password: PFX_PASSWORD,
            keyLocation: 1,
          }),
        'ERR_DEVICE_TPM_UNSUPPORTED',
        /the TPM cannot hold this key/,
      );
      assert.doesNotMatch(objects(), /Private Key Object/, 'dave’s key was destroyed again');
      await install(a, [pki.path('dave.pfx')], { password: PFX_PASSWORD, keyLocation: 1 });
      assert.match(objects(), /label: +certpost-device-/);
      const entry = a.certificates.find('device', 'My', pki.sha1('dave'))!;
      assert.equal(a.keys.find(entry.keyId!)!.provider, 'tpm');
      await a.close();
    } finally {
      await tpm.close();
      hsm.remove();
    }
  });

  it('KeyLocation 1 without a TPM, and an exportable TPM key, are refused before any change', async () => {
    const a = await trusting();
    // Without a key to import, where keys would go does not matter.
    await install(a, [pki.path('bob.pem')], { keyLocation: 1, exportable: true });
    await refused(
      a,
      () => install(a, [pki.path('alice.pfx')], { password: PFX_PASSWORD, keyLocation: 1 }),
      'ERR_DEVICE_NO_TPM',
      /no TPM/,
    );
    await refused(
      a,
      () =>
        install(a, [pki.path('alice.pfx')], {
          password: PFX_PASSWORD,
          keyLocation: 2,
          exportable: true,
        }),
      'ERR_DEVICE_BAD_PARAMETER',
      /KeyLocation 3/,
    );
    await a.close();
  });
});

/** Starts an HTTP(S) server on loopback; `close` it after. */
async function serve(handler: RequestListener, tls?: { key: Buffer; cert: Buffer }) {
  const server: Server = tls ? createHttps(tls, handler) : createHttp(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    closeAll: () => server.closeAllConnections(),
  };
}

/** Files of the PKI by path; `/go/N` redirects N times; `/to?u=URL` redirects to URL. */
const files: RequestListener = (req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  const hops = /^\/go\/(\d+)$/.exec(url.pathname);
  if (hops) {
    const n = Number(hops[1]);
    res.writeHead(302, { location: n > 0 ? `/go/${n - 1}` : '/bob.pem' }).end();
  } else if (url.pathname === '/to')
    res.writeHead(301, { location: url.searchParams.get('u')! }).end();
  else {
    try {
      const body = readFileSync(pki.path(url.pathname.slice(1)));
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404).end('no such file');
    }
  }
};

describe('downloads', () => {
  it('http works, with a warning; redirects are followed up to the limit', async () => {
    const http = await serve(files);
    try {
      const a = await trusting();
      const loaded = await load(a, `${http.url}/go/2`);
      assert.match(loaded.warnings.join(), /is plain HTTP: anyone on the network path/);
      const { review } = await install(a, [loaded]);
      assert.match(review.report.warnings.join(), /plain HTTP/);
      assert.deepEqual(
        loaded.sources.map((s) => s.filename),
        ['bob.pem'],
      );
      assert.ok(a.certificates.find('device', 'TrustedPeople', pki.sha1('bob')));
      await refused(
        a,
        () => install(a, [`${http.url}/go/6`]),
        'ERR_DEVICE_DOWNLOAD',
        /more than 5 redirects/,
      );
      await refused(
        a,
        () => install(a, [`${http.url}/nothing.cer`]),
        'ERR_DEVICE_DOWNLOAD',
        /answered 404/,
      );
      await assert.rejects(load(a, `${http.url}/alice.pfx`, { maxBytes: 100 }), {
        code: 'ERR_DEVICE_INPUT_TOO_LARGE',
        message: /alice\.pfx: the reply is larger than 100 bytes/,
      });
      await assert.rejects(load(a, pki.path('alice.pfx'), { maxBytes: 100 }), {
        code: 'ERR_DEVICE_INPUT_TOO_LARGE',
        message: /alice\.pfx is \d+ bytes \(the installer reads at most 100\)/,
      });
      await a.close();
    } finally {
      await http.close();
    }
  });

  it('https verifies the server against the device Root store; an unknown server is refused', async () => {
    // A server configured as it should be: its certificate and the issuing CA.
    const trusted = await serve(files, {
      key: readFileSync(pki.path('server.key')),
      cert: Buffer.concat([
        readFileSync(pki.path('server.pem')),
        readFileSync(pki.path('inter.pem')),
      ]),
    });
    const unknown = await serve(files, {
      key: readFileSync(pki.path('self.key')),
      cert: readFileSync(pki.path('self.pem')),
    });
    const plain = await serve(files);
    try {
      const a = await open();
      // Before the root is installed, our server is unknown too.
      await refused(
        a,
        () => install(a, [`${trusted.url}/bob.pem`]),
        'ERR_DEVICE_DOWNLOAD_UNTRUSTED',
        /server's certificate is not trusted by this device \(UNABLE_TO_GET_ISSUER_CERT_LOCALLY\); install its root first/,
      );
      await install(a, [pki.path('root.der'), pki.path('inter.pem')]);
      const loaded = await load(a, `${trusted.url}/bob.pem`);
      assert.deepEqual(loaded.warnings, []);
      await install(a, [loaded]);
      assert.ok(a.certificates.find('device', 'TrustedPeople', pki.sha1('bob')));
      await refused(
        a,
        () => install(a, [`${unknown.url}/alice.pem`]),
        'ERR_DEVICE_DOWNLOAD_UNTRUSTED',
        /DEPTH_ZERO_SELF_SIGNED_CERT/,
      );
      await refused(
        a,
        () => install(a, [`${trusted.url}/to?u=${encodeURIComponent(`${plain.url}/bob.pem`)}`]),
        'ERR_DEVICE_DOWNLOAD',
        /leaving HTTPS for plain HTTP is refused/,
      );
      await a.close();
    } finally {
      await Promise.all([trusted.close(), unknown.close(), plain.close()]);
    }
  });

  it('a server that never answers times out', async () => {
    const silent = await serve(() => undefined); // accepts, never answers
    try {
      const a = await trusting();
      await assert.rejects(load(a, `${silent.url}/root.cer`, { timeoutMs: 200 }), {
        code: 'ERR_DEVICE_DOWNLOAD',
        message: /cannot reach .*\/root\.cer: no answer in time/,
      });
      await a.close();
    } finally {
      silent.closeAll();
      await silent.close();
    }
  });

  it('a URL whose last segment has a malformed escape keeps it as the file name', async () => {
    // decodeURIComponent threw a URIError here (an internal error) for a server's redirect.
    const bob = readFileSync(pki.path('bob.pem'));
    const http = await serve((_req, res) => res.writeHead(200).end(bob));
    try {
      const loaded = await load(await trusting(), `${http.url}/bob%zz.pem`);
      assert.deepEqual(
        loaded.sources.map((s) => s.filename),
        ['bob%zz.pem'],
      );
    } finally {
      await http.close();
    }
  });

  it('an unreachable server is ERR_DEVICE_DOWNLOAD, naming the URL', async () => {
    const a = await trusting();
    const url = `http://127.0.0.1:${await freePort()}/root.cer`;
    await refused(
      a,
      () => install(a, [url]),
      'ERR_DEVICE_DOWNLOAD',
      new RegExp(`cannot reach ${url}: .*ECONNREFUSED`),
    );
    await refused(
      a,
      () => install(a, ['ftp://127.0.0.1/x.cer']),
      'ERR_DEVICE_BAD_PARAMETER',
      /only http and https/,
    );
    await a.close();
  });
});
