/**
 * The server's CSP command builders (omadm/csp-commands.ts) applied to the real device agent:
 * every command a profile sends is accepted as the CSP documents it, and the Deletes undo it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  addTrustedCertificate,
  certHash,
  deletePfx,
  deleteScep,
  deleteTrustedCertificate,
  listStore,
  pfxInstall,
  pfxThumbprint,
  scepInstall,
  scepStatus,
} from '../omadm/csp-commands.ts';
import { withIds } from '../omadm/server-session.ts';
import { buildSyncML, type Command } from '../omadm/syncml.ts';
import { run, tempDir } from '../testing/tools.ts';
import { DeviceAgent } from './agent.ts';
import { summarise } from './testing.ts';

let work = '';
let agent: DeviceAgent;
let rootDer: Uint8Array;
let pfx: Uint8Array;
let session = 0;

const openssl = (...args: string[]) => run('openssl', args, { cwd: work });

/** One server message carrying `commands` (CmdIDs c1, c2 …, Atomic children c1.1 …). */
function message(...commands: Command[]): string {
  return buildSyncML({
    header: {
      sessionId: String(++session),
      msgId: '1',
      target: agent.id,
      source: 'https://mdm.example.test/ManagementServer/MDM.svc',
    },
    body: commands.map((c, i) => withIds(c, `c${i + 1}`)),
    final: true,
  });
}

before(async () => {
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
    '/CN=Profile Root',
    '-days',
    '30',
  );
  openssl('x509', '-in', 'root.pem', '-outform', 'DER', '-out', 'root.der');
  rootDer = new Uint8Array(readFileSync(join(work, 'root.der')));
  openssl(
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'id.key',
    '-out',
    'id.csr',
    '-subj',
    '/CN=ann@example.com',
  );
  openssl(
    'x509',
    '-req',
    '-in',
    'id.csr',
    '-CA',
    'root.pem',
    '-CAkey',
    'root.key',
    '-out',
    'id.pem',
    '-days',
    '30',
  );
  openssl(
    'pkcs12',
    '-export',
    '-in',
    'id.pem',
    '-inkey',
    'id.key',
    '-out',
    'id.pfx',
    '-passout',
    'pass:s3cret',
  );
  pfx = new Uint8Array(readFileSync(join(work, 'id.pfx')));
  agent = await DeviceAgent.open(join(work, 'device'));
});

after(async () => {
  await agent.close();
});

describe('CSP command builders against the device agent', () => {
  it('trusted certificate: Add, a re-delivery as Replace, list, Delete', async () => {
    const r = summarise(
      await agent.handle(
        message(
          addTrustedCertificate('device', 'Root', rootDer),
          addTrustedCertificate('device', 'Root', rootDer, { replace: true }),
          addTrustedCertificate('user', 'TrustedPeople', rootDer),
          listStore('device', 'Root'),
        ),
      ),
    );
    assert.deepEqual(r.statuses, ['Add=200', 'Replace=200', 'Add=200', 'Get=200']);
    // ?list=Struct names every node below the store, the certificate's included.
    assert.ok(
      r.results.has(`./Device/Vendor/MSFT/RootCATrustedCertificates/Root/${certHash(rootDer)}`),
    );
    const gone = summarise(
      await agent.handle(
        message(
          deleteTrustedCertificate('device', 'Root', rootDer),
          deleteTrustedCertificate('user', 'TrustedPeople', rootDer),
        ),
      ),
    );
    assert.deepEqual(gone.statuses, ['Delete=200', 'Delete=200']);
    assert.equal(agent.certificates.all().length, 0);
  });

  it('PFX: the Atomic installs, Thumbprint reads it, Delete removes certificate and key', async () => {
    const r = summarise(
      await agent.handle(
        message(
          pfxInstall({
            scope: 'user',
            id: 'smime-1',
            pfx,
            password: 's3cret',
            passwordEncryptionType: 0,
            keyLocation: 3,
            exportable: true,
          }),
          pfxThumbprint('user', 'smime-1'),
        ),
      ),
    );
    assert.deepEqual(r.statuses.slice(0, 1), ['Atomic=200']);
    assert.ok(
      r.statuses.slice(1, -1).every((s) => s.endsWith('=200')),
      r.statuses.join(),
    );
    const thumbprint = r.results.get(
      './User/Vendor/MSFT/ClientCertificateInstall/PFXCertInstall/smime-1/Thumbprint',
    );
    assert.equal(thumbprint, agent.certificates.list('user', 'My')[0]?.thumbprint);
    const gone = summarise(await agent.handle(message(deletePfx('user', 'smime-1'))));
    assert.deepEqual(gone.statuses, ['Delete=200']);
    assert.equal(agent.certificates.list('user', 'My').length, 0);
    assert.equal(agent.store.data.keys.length, 0);
  });

  it('SCEP: the Atomic with Exec Enroll last is accepted (Status in progress), Delete removes it', async () => {
    const r = summarise(
      await agent.handle(
        message(
          scepInstall({
            scope: 'device',
            id: 'wifi 1',
            serverUrls: ['http://127.0.0.1:9/scep', 'http://127.0.0.1:9/scep2'],
            challenge: 'one-time',
            subjectName: 'CN=device-1,O=Contoso',
            subjectAlternativeNames: '3+device-1.example.com',
            ekus: ['1.3.6.1.5.5.7.3.2'],
            keyUsage: 0xa0,
            keyProtection: 3,
            keyLength: 2048,
            hashAlgorithm: 'SHA-2',
            caThumbprint: certHash(rootDer),
            retryDelay: 1,
            retryCount: 2,
            validPeriod: 'Days',
            validPeriodUnits: 30,
          }),
          scepStatus('device', 'wifi 1'),
        ),
      ),
    );
    assert.deepEqual(r.statuses[0], 'Atomic=200');
    assert.ok(
      r.statuses.slice(1).every((s) => /=(200|202)$/.test(s)),
      r.statuses.join(),
    );
    assert.equal(
      r.results.get('./Device/Vendor/MSFT/ClientCertificateInstall/SCEP/wifi%201/Status'),
      '32',
    );
    const gone = summarise(await agent.handle(message(deleteScep('device', 'wifi 1'))));
    assert.deepEqual(gone.statuses, ['Delete=200']);
    assert.equal(agent.store.data.scep.length, 0);
  });
});
