/**
 * CA rollover, end to end: `ca rollover` prepares the next issuing CA, a running server offers
 * it by GetNextCACert (RFC 8894 §4.7) signed by the current CA, `ca activate-next` switches,
 * and after a restart enrollment uses the new CA under the same root.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { parseSignedData, verifySigner } from '../pki/cms.ts';
import { encodePem } from '../pki/pem.ts';
import { parsePkcs7Certificates } from '../pki/pkcs7.ts';
import { formatName, sha1Thumbprint } from '../pki/x509.ts';
import { createScepClient, fetchTransport } from '../scep/client.ts';
import { spawnServe } from '../testing/serve-process.ts';
import { run, tempDir } from '../testing/tools.ts';

const BIN = new URL('../../bin/certpost.js', import.meta.url).pathname;
const ENV = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !k.startsWith('CERTPOST_')),
);
const certpost = (...args: string[]) => {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: ENV });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};
const get = async (url: string) => {
  const r = await fetch(url);
  return {
    status: r.status,
    type: r.headers.get('content-type'),
    body: new Uint8Array(await r.arrayBuffer()),
  };
};

it('prepares, offers by GetNextCACert, activates, and then issues from the next CA', async () => {
  const dir = tempDir();
  const data = join(dir, 'data');
  assert.equal(certpost('ca', 'init', '--data', data).code, 0);

  let server = await spawnServe(['--data', data, '--scep-challenge', 'roll'], { env: ENV });
  const before = parsePkcs7Certificates((await get(`${server.url}/scep?operation=GetCACert`)).body);
  assert.doesNotMatch(
    new TextDecoder().decode((await get(`${server.url}/scep?operation=GetCACaps`)).body),
    /GetNextCACert/,
  );
  assert.equal((await get(`${server.url}/scep?operation=GetNextCACert`)).status, 404);
  await server.stop();

  const rolled = certpost('ca', 'rollover', '--data', data, '--json');
  assert.equal(rolled.code, 0, rolled.stderr);
  const nextSha1 = (JSON.parse(rolled.stdout) as { next: { sha1: string }[] }).next[0]!.sha1;
  const again = certpost('ca', 'rollover', '--data', data);
  assert.equal(again.code, 3);
  assert.match(again.stderr, /already exists/);

  server = await spawnServe(['--data', data, '--scep-challenge', 'roll'], { env: ENV });
  assert.match(
    new TextDecoder().decode((await get(`${server.url}/scep?operation=GetCACaps`)).body),
    /GetNextCACert/,
  );
  const next = await get(`${server.url}/scep?operation=GetNextCACert`);
  assert.equal(next.type, 'application/x-x509-next-ca-cert');
  // Signed by the current CA; its content is the next CA certificate.
  const signed = parseSignedData(next.body);
  const current = before[0]!;
  assert.ok(verifySigner(signed, signed.signers[0]!, current), 'signed by the current CA');
  const offered = parsePkcs7Certificates(signed.content!);
  assert.equal(sha1Thumbprint(offered[0]!), nextSha1);
  assert.equal(
    formatName(offered[0]!.issuer),
    formatName(before[1]!.subject),
    'under the same root',
  );
  writeFileSync(join(dir, 'root.pem'), encodePem('CERTIFICATE', before[1]!.der));
  writeFileSync(join(dir, 'next.pem'), encodePem('CERTIFICATE', offered[0]!.der));
  assert.match(
    run('openssl', ['verify', '-CAfile', 'root.pem', 'next.pem'], { cwd: dir }).toString(),
    /OK/,
  );
  // Until activation, issuance stays with the current CA.
  await server.stop();

  const activated = certpost('ca', 'activate-next', '--data', data, '--json');
  assert.equal(activated.code, 0, activated.stderr);
  assert.ok(existsSync((JSON.parse(activated.stdout) as { previous: string }).previous));
  assert.equal(certpost('ca', 'activate-next', '--data', data).code, 3, 'nothing left to activate');
  assert.ok(readdirSync(dir).length > 0);

  server = await spawnServe(['--data', data, '--scep-challenge', 'roll'], { env: ENV });
  try {
    const after = parsePkcs7Certificates(
      (await get(`${server.url}/scep?operation=GetCACert`)).body,
    );
    assert.equal(sha1Thumbprint(after[0]!), nextSha1, 'the next CA is now the CA');
    assert.equal(sha1Thumbprint(after[1]!), sha1Thumbprint(before[1]!), 'same root');
    assert.equal((await get(`${server.url}/scep?operation=GetNextCACert`)).status, 404);
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const result = await createScepClient(fetchTransport(`${server.url}/scep`)).enroll({
      subject: 'CN=after-rollover',
      key: privateKey,
      challenge: 'roll',
    });
    assert.equal(result.status, 'issued');
    if (result.status === 'issued')
      assert.equal(formatName(result.certificate.issuer), formatName(after[0]!.subject));
  } finally {
    await server.stop();
  }
});
