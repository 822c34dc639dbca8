/**
 * SCEP through the CSPs against our server on loopback (issue 4 "Must show"): success, a
 * wrong challenge, PENDING then approved within RetryCount, PENDING past RetryCount, a CA
 * thumbprint mismatch refused before the request is sent; then the stable CLI interface
 * `certpost device exec --state DIR < message > reply`, and kill -9 of the agent in the
 * middle of an enrollment. RetryDelay minutes are shortened (minuteMs) so polls are quick.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { oneTimeChallenge } from '../server/testing.ts';
import { DeviceAgent } from '../device/agent.ts';
import { DEVICE_ERRORS } from '../device/errors.ts';
import { SCEP_STATUS } from '../device/state.ts';
import {
  CCI_SCEP as CCI,
  cmd,
  recordingScepTransport,
  scepInstall,
  scepStatus,
  serverMessage,
  settle,
  summarise,
  type ScepInstallOptions,
} from '../device/testing.ts';
import { parsePkcs7Certificates } from '../pki/pkcs7.ts';
import { isCA, sha1Thumbprint } from '../pki/x509.ts';
import type { ScepTransportRequest } from '../scep/client.ts';
import { encodePem } from '../pki/pem.ts';
import { startHttpRelay } from '../testing/http-relay.ts';
import { createSoftHsmToken } from '../testing/softhsm.ts';
import { run, tempDir } from '../testing/tools.ts';
import { openTpm } from '../device/tpm.ts';
import { startServer, type RunningServer } from '../server/serve.ts';

const BIN = new URL('../../bin/certpost.js', import.meta.url).pathname;
const STATIC = 'device-static-secret';
const MINUTE = 40;
let server: RunningServer;
let work = '';
let caThumbprint = '';
let caFile = '';

before(async () => {
  work = tempDir();
  server = await startServer({
    dataDir: join(work, 'data'),
    listen: '127.0.0.1:0',
    staticChallenge: STATIC,
    logLevel: 'warn',
  });
  const res = await fetch(`${server.url}/scep?operation=GetCACert`);
  const chain = parsePkcs7Certificates(new Uint8Array(await res.arrayBuffer()));
  const issuing = chain.find((c) => isCA(c) && c.subject.der.length > 0)!;
  caThumbprint = sha1Thumbprint(issuing);
  caFile = join(work, 'ca.pem');
  writeFileSync(caFile, chain.map((c) => encodePem('CERTIFICATE', c.der)).join(''));
});

after(async () => {
  await server.app.close();
});

/** A SCEP profile for our server (its URL and CA thumbprint unless given). */
const install = (
  id: string,
  o: Omit<ScepInstallOptions, 'url' | 'thumbprint'> & { url?: string; thumbprint?: string },
) => scepInstall(id, { url: `${server.url}/scep`, thumbprint: caThumbprint, ...o });

/** A device whose SCEP transport records the requests it sends. */
async function device() {
  const requests: ScepTransportRequest[] = [];
  const agent = await DeviceAgent.open(tempDir(), {
    minuteMs: MINUTE,
    scepTransport: recordingScepTransport(requests),
  });
  return { agent, requests };
}

const hr = (code: keyof typeof DEVICE_ERRORS) => DEVICE_ERRORS[code].hresult | 0;

describe('SCEP through ClientCertificateInstall against our server', () => {
  it('enrolls: Status 1, the certificate in My with its key, the challenge cleared after Exec', async () => {
    const { agent, requests } = await device();
    const r = summarise(
      await agent.handle(
        serverMessage(
          install('wifi', { challenge: STATIC, cn: 'dev-ok' }) +
            cmd.get(`${CCI}/wifi/Install/Challenge`) +
            cmd.get(`${CCI}/wifi/Status`),
        ),
      ),
    );
    assert.equal(r.statuses[0], 'Atomic=200');
    assert.deepEqual(r.statuses.slice(-2), ['Get=404', 'Get=200']);
    assert.equal(r.results.get(`${CCI}/wifi/Status`), String(SCEP_STATUS.unknown));
    await settle(agent, MINUTE);
    const s = await scepStatus(agent, 'wifi');
    assert.equal(s.status, SCEP_STATUS.ok);
    assert.equal(s.errorCode, 0);
    const mine = agent.certificates.list('device', 'My');
    assert.equal(mine.length, 1);
    assert.equal(s.thumbprint, mine[0]!.thumbprint);
    assert.equal(agent.keys.find(mine[0]!.keyId!)?.provider, 'software');
    assert.deepEqual(
      requests.map((q) => q.operation),
      ['GetCACaps', 'GetCACert', 'PKIOperation'],
    );
    const pem = join(work, 'dev-ok.pem');
    writeFileSync(pem, encodePem('CERTIFICATE', Buffer.from(mine[0]!.der, 'base64')));
    assert.match(run('openssl', ['verify', '-CAfile', caFile, pem]).toString(), /OK/);
    assert.match(
      run('openssl', ['x509', '-in', pem, '-noout', '-ext', 'subjectAltName']).toString(),
      /DNS:dev-ok\.example\.test/,
    );
    // Delete removes the certificate and its key.
    const d = summarise(await agent.handle(serverMessage(cmd.delete(`${CCI}/wifi`))));
    assert.deepEqual(d.statuses, ['Delete=200']);
    assert.equal(agent.certificates.all().length, 0);
    assert.equal(agent.store.data.keys.length, 0);
    await agent.close();
  });

  it('a wrong challenge: Status 16 with E_ACCESSDENIED, nothing installed, no key left', async () => {
    const { agent } = await device();
    await agent.handle(
      serverMessage(install('bad', { challenge: 'not-the-secret', cn: 'dev-bad' })),
    );
    await settle(agent, MINUTE);
    const s = await scepStatus(agent, 'bad');
    assert.equal(s.status, SCEP_STATUS.failed);
    assert.equal(s.errorCode, hr('ERR_DEVICE_SCEP_REFUSED'));
    assert.equal(s.thumbprint, '');
    assert.equal(agent.certificates.all().length, 0);
    assert.equal(agent.store.data.keys.length, 0);
    await agent.close();
  });

  it('PENDING (Status 2), then approved within RetryCount: the next poll installs it', async () => {
    const { agent, requests } = await device();
    await agent.handle(
      serverMessage(
        install('held', {
          challenge: await oneTimeChallenge(server.context, 'manual'),
          cn: 'dev-held',
          retryCount: 30,
        }),
      ),
    );
    await agent.runDue();
    assert.equal((await scepStatus(agent, 'held')).status, SCEP_STATUS.pending);
    const pending = (await server.context.store.listRequests('pending')).find((q) =>
      q.subject.includes('dev-held'),
    )!;
    assert.ok(pending);
    assert.equal(await server.context.enrollment.decide(pending.id, 'approved', 'test'), true);
    await settle(agent, MINUTE);
    const s = await scepStatus(agent, 'held');
    assert.equal(s.status, SCEP_STATUS.ok);
    assert.ok(s.thumbprint);
    assert.ok(
      requests.filter((q) => q.operation === 'PKIOperation').length >= 2,
      'at least one CertPoll',
    );
    await agent.close();
  });

  it('PENDING past RetryCount: Status 16 with ERROR_TIMEOUT after exactly RetryCount polls', async () => {
    const { agent, requests } = await device();
    await agent.handle(
      serverMessage(
        install('stuck', {
          challenge: await oneTimeChallenge(server.context, 'manual'),
          cn: 'dev-stuck',
          retryCount: 2,
        }),
      ),
    );
    await settle(agent, MINUTE);
    const s = await scepStatus(agent, 'stuck');
    assert.equal(s.status, SCEP_STATUS.failed);
    assert.equal(s.errorCode, hr('ERR_DEVICE_SCEP_PENDING_TIMEOUT'));
    assert.equal(
      requests.filter((q) => q.operation === 'PKIOperation').length,
      3,
      'the request and two polls',
    );
    await agent.close();
  });

  it('a CA whose thumbprint is not CAThumbprint is refused before the request is sent', async () => {
    const { agent, requests } = await device();
    await agent.handle(
      serverMessage(
        install('mitm', { challenge: STATIC, cn: 'dev-mitm', thumbprint: '00'.repeat(20) }),
      ),
    );
    await settle(agent, MINUTE);
    const s = await scepStatus(agent, 'mitm');
    assert.equal(s.status, SCEP_STATUS.failed);
    assert.equal(s.errorCode, hr('ERR_DEVICE_SCEP_CA_MISMATCH'));
    assert.ok(!requests.some((q) => q.operation === 'PKIOperation'));
    await agent.close();
  });

  it('a missing required parameter refuses the Exec (400) and rolls the Atomic back', async () => {
    const { agent } = await device();
    const node = `${CCI}/incomplete`;
    const r = summarise(
      await agent.handle(
        serverMessage(
          cmd.atomic(
            cmd.add(node),
            cmd.add(`${node}/Install/ServerURL`, `${server.url}/scep`),
            cmd.exec(`${node}/Install/Enroll`),
          ),
        ),
      ),
    );
    assert.deepEqual(r.statuses, ['Atomic=507', 'Add=216', 'Add=216', 'Exec=400']);
    await agent.close();
  });

  it('the legacy CertificateStore/MY/SCEP branch enrolls into the user’s My store', async () => {
    const { agent } = await device();
    const csp = './Device/Vendor/MSFT/CertificateStore/MY/SCEP';
    const r = summarise(
      await agent.handle(
        serverMessage(install('old', { challenge: STATIC, cn: 'dev-legacy', csp })),
      ),
    );
    assert.equal(r.statuses[0], 'Atomic=200');
    await settle(agent, MINUTE);
    const s = await scepStatus(agent, 'old', csp);
    assert.equal(s.status, SCEP_STATUS.ok);
    const listed = summarise(
      await agent.handle(serverMessage(cmd.get('./Device/Vendor/MSFT/CertificateStore/MY/User'))),
    );
    assert.equal(listed.results.get('./Device/Vendor/MSFT/CertificateStore/MY/User'), s.thumbprint);
    await agent.close();
  });
});

/**
 * Runs `certpost device …` with `input` on stdin, asynchronously (the server under test runs
 * in this process, so a synchronous spawn would starve it).
 */
function cli(args: string[], input: string, o: { onStdout?: (child: ChildProcess) => void } = {}) {
  const child = spawn(process.execPath, [BIN, 'device', ...args], {
    env: { ...process.env, CERTPOST_DEVICE_MINUTE_MS: String(MINUTE) },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    o.onStdout?.(child);
  });
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin.end(input);
  return new Promise<{ code: number | null; signal: string | null; out: string; err: string }>(
    (resolve) => child.once('exit', (code, signal) => resolve({ code, signal, out, err })),
  );
}

describe('certpost device exec (the stable interface)', () => {
  it('applies a message, answers it, enrolls in the background; a later exec reads the result', async () => {
    const dir = tempDir();
    const first = await cli(
      ['exec', '--state', dir],
      serverMessage(install('cli', { challenge: STATIC, cn: 'dev-cli' })),
    );
    assert.equal(first.code, 0, first.err);
    assert.deepEqual(summarise(first.out).statuses[0], 'Atomic=200');
    const second = await cli(
      ['exec', '--state', dir],
      serverMessage(cmd.get(`${CCI}/cli/Status`) + cmd.get(`${CCI}/cli/CertThumbprint`)),
    );
    assert.equal(second.code, 0, second.err);
    const r = summarise(second.out);
    assert.equal(r.results.get(`${CCI}/cli/Status`), '1');
    assert.match(r.results.get(`${CCI}/cli/CertThumbprint`)!, /^[0-9A-F]{40}$/);
    const show = JSON.parse((await cli(['show', '--state', dir, '--json'], '')).out) as {
      certificates: { thumbprint: string }[];
    };
    assert.deepEqual(
      show.certificates.map((c) => c.thumbprint),
      [r.results.get(`${CCI}/cli/CertThumbprint`)],
    );
  });

  it('broken SyncML: a one-line error, exit 3, and the state is untouched', async () => {
    const dir = tempDir();
    await cli(['exec', '--state', dir], serverMessage(cmd.get(`${CCI}`)));
    const original = readFileSync(join(dir, 'state.json'), 'utf8');
    for (const bad of [
      '<SyncML><SyncHdr>',
      '<!DOCTYPE x [<!ENTITY a "b">]><SyncML/>',
      'not xml at all',
    ]) {
      const r = await cli(['exec', '--state', dir], bad);
      assert.equal(r.code, 3, r.err);
      assert.match(r.err, /^certpost: .+\n$/);
      assert.equal(r.out, '');
    }
    assert.equal(readFileSync(join(dir, 'state.json'), 'utf8'), original);
  });

  it(
    'kill -9 in the middle of an enrollment: the state stays consistent and `device run` finishes it',
    { timeout: 120_000 },
    async () => {
      // Every PKIOperation is held 1.5 s: a wide, known window in which the agent is
      // mid-enrollment (key made and saved, request sent, no answer yet).
      const slow = await startHttpRelay(server.url, {
        holdMs: (_method, url) => (url.includes('PKIOperation') ? 1500 : 0),
      });
      try {
        for (const waitMs of [0, 400, 900]) {
          const dir = tempDir();
          // Killed `waitMs` ms after the reply was written: the key is being made, or the request
          // is held by the proxy.
          const killed = await cli(
            ['exec', '--state', dir],
            serverMessage(
              install('k9', {
                challenge: STATIC,
                cn: `dev-kill-${waitMs}`,
                url: `${slow.url}/scep`,
              }),
            ),
            { onStdout: (child) => void setTimeout(() => child.kill('SIGKILL'), waitMs) },
          );
          assert.equal(killed.signal, 'SIGKILL');
          assert.equal(
            summarise(killed.out).statuses[0],
            'Atomic=200',
            'the reply came before the kill',
          );
          const mid = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as {
            scep: { status: number }[];
          };
          assert.equal(mid.scep[0]?.status, SCEP_STATUS.unknown, 'killed mid-enrollment');
          const resumed = await cli(['run', '--state', dir, '--until-idle'], '');
          assert.equal(resumed.code, 0, resumed.err);
          const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as {
            certificates: { keyId?: string }[];
            keys: { id: string }[];
            scep: { status: number; error?: string }[];
          };
          assert.equal(
            state.scep[0]!.status,
            SCEP_STATUS.ok,
            `after ${waitMs} ms: ${state.scep[0]!.error}`,
          );
          // One certificate, with its key; no key without a certificate.
          assert.equal(state.certificates.length, 1);
          assert.deepEqual(
            state.keys.map((k) => k.id),
            [state.certificates[0]!.keyId],
          );
        }
      } finally {
        await slow.close();
      }
    },
  );
});

describe("Microsoft's published example payloads (src/device/testdata/ms-examples)", () => {
  it('the ClientCertificateInstall SCEP example, its placeholders filled, gets 200 for every command', async () => {
    const raw = readFileSync(
      new URL('../device/testdata/ms-examples/clientcertificateinstall-scep.xml', import.meta.url),
      'utf8',
    );
    // The page's placeholders and typos (manifest.json), and nothing else, are replaced: the
    // UniqueID, the `313$` CmdID, the server, its challenge and the CA's SHA-1 (the page has 16
    // bytes); the example has no SyncHdr, which a real message carries.
    const message = raw
      .replaceAll('<InsertUniqueIDHere>', 'ms-example')
      .replace('<CmdID>313$</CmdID>', '<CmdID>313</CmdID>')
      .replace('http://constoso.com/certsrv/mscep/mscep.dll', `${server.url}/scep`)
      .replace('1234CB055B7EBF384A9486A22B7559A5', STATIC)
      .replace('12345087E648875D1DF5D9F9FF89DD10', caThumbprint)
      .replace(
        '<SyncBody>',
        `<SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto><SessionID>1</SessionID><MsgID>1</MsgID><Target><LocURI>device</LocURI></Target><Source><LocURI>https://mdm.example.test</LocURI></Source></SyncHdr><SyncBody>`,
      );
    const { agent } = await device();
    const r = summarise(await agent.handle(message));
    assert.ok(r.statuses.length > 10);
    assert.deepEqual(
      r.statuses.filter((s) => !s.endsWith('=200')),
      [],
    );
    await agent.close();
  });
});

describe('a PKCS#11 token as the device TPM (SoftHSM2)', () => {
  it('KeyProtection 1: the key is made in the token, never exportable; Delete destroys the token object', async () => {
    const hsm = createSoftHsmToken('device-tpm');
    const tpm = await openTpm({ module: hsm.module, token: hsm.label, pin: hsm.userPin });
    try {
      const agent = await DeviceAgent.open(tempDir(), { tpm, minuteMs: MINUTE });
      await agent.handle(
        serverMessage(install('tpm', { challenge: STATIC, cn: 'dev-tpm', keyProtection: 1 })),
      );
      await settle(agent, MINUTE);
      const s = await scepStatus(agent, 'tpm');
      assert.equal(s.status, SCEP_STATUS.ok);
      const entry = agent.certificates.list('device', 'My')[0]!;
      const key = agent.keys.find(entry.keyId!)!;
      assert.equal(key.provider, 'tpm');
      assert.equal(key.exportable, false);
      assert.equal(key.pkcs8, undefined, 'no key material in the state');
      assert.throws(() => agent.keys.exportKey(key.id), { code: 'ERR_DEVICE_NOT_EXPORTABLE' });
      assert.match(
        hsm.pkcs11Tool(['--list-objects', '--type', 'privkey']),
        new RegExp(`certpost-device-${key.id}`),
      );
      await agent.handle(serverMessage(cmd.delete(`${CCI}/tpm`)));
      assert.doesNotMatch(
        hsm.pkcs11Tool(['--list-objects', '--type', 'privkey']),
        /certpost-device-/,
      );
      await agent.close();
    } finally {
      await tpm.close();
      hsm.remove();
    }
  });
});
