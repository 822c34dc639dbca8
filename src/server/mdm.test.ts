/**
 * The MDM service over a real (SQLite) store, without HTTP: digest authentication and what a
 * device may write about itself.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { credentialHash, md5Cred, newNonce } from '../omadm/auth.ts';
import { buildSyncML, LIMITS, parseSyncML, type Item } from '../omadm/syncml.ts';
import { openSqliteStore } from '../store/sqlite.ts';
import type { Store } from '../store/types.ts';
import { createMdmService, type MdmService } from './mdm.ts';

let store: Store;
let mdm: MdmService;
const nonce = newNonce();

beforeEach(async () => {
  store = await openSqliteStore(':memory:');
  mdm = createMdmService({ store });
  await store.createDevice({
    id: 'D1',
    hardwareId: 'HW1',
    name: 'one',
    user: null,
    certificateSerial: '01',
    enrolledAt: new Date(),
    info: {},
    auth: { hash: credentialHash('D1', 'pw'), nonce },
  });
});
afterEach(async () => {
  await store.close();
});

function message(items: Item[], cred = true): string {
  return buildSyncML({
    header: {
      sessionId: '1',
      msgId: '1',
      target: 'https://mdm/ManagementServer/MDM.svc',
      source: 'HW1',
      ...(cred ? { cred: md5Cred('D1', 'pw', Buffer.from(nonce, 'base64')) } : {}),
    },
    body: [{ kind: 'Replace', cmdId: '1', items }],
    final: true,
  });
}

describe('MDM service', () => {
  it('keeps what a device reports within bounds: DevInfo/DevDetail only, values cut short', async () => {
    const r = await mdm.session(
      message([
        { source: './DevInfo/Man', data: 'x'.repeat(5000) },
        { source: './Vendor/MSFT/Anything', data: 'no' },
        ...Array.from({ length: 100 }, (_, i) => ({ source: `./DevDetail/N${i}`, data: 'v' })),
      ]),
    );
    assert.equal(r.status, 200);
    const info = (await store.getDevice('D1'))!.info;
    assert.equal(info['DevInfo/Man']?.length, 512);
    assert.equal(info['Vendor/MSFT/Anything'], undefined);
    assert.ok(Object.keys(info).length <= 64);
  });

  it('a message whose answer would exceed the SyncML limit: 413 with the next nonce, nothing recorded', async () => {
    // One item whose target is 300 KB of '<' in CDATA: its Status echoes it escaped, 1.2 MB.
    const body = message([{ target: 'T', source: './DevInfo/Man', data: 'x' }]).replace(
      '<LocURI>T</LocURI>',
      `<LocURI><![CDATA[${'<'.repeat(300_000)}]]></LocURI>`,
    );
    assert.ok(Buffer.byteLength(body) < LIMITS.maxBytes);
    const r = await mdm.session(body);
    assert.ok(r.status === 200 && 'body' in r && r.tooLarge);
    const reply = parseSyncML(r.body);
    assert.equal(reply.body.length, 1);
    const [status] = reply.body;
    assert.ok(status?.kind === 'Status' && status.cmd === 'SyncHdr' && status.data === '413');
    assert.ok(status.chal?.meta.nextNonce, 'the device can go on with the next nonce');
    assert.deepEqual((await store.getDevice('D1'))!.info, {});
  });

  it('without credentials: 407 with a nonce, and nothing recorded', async () => {
    const r = await mdm.session(message([{ source: './DevInfo/Man', data: 'x' }], false));
    assert.ok(r.status === 200 && 'body' in r);
    const [status] = parseSyncML(r.body).body;
    assert.ok(status?.kind === 'Status' && status.data === '407' && status.chal?.meta.nextNonce);
    assert.deepEqual((await store.getDevice('D1'))!.info, {});
    assert.equal((await store.getDevice('D1'))!.lastSeenAt, null);
  });

  it('by certificate: answers for the record the transport checked, without digest credentials', async () => {
    const device = (await store.getDevice('D1'))!;
    const r = await mdm.session(message([{ source: './DevInfo/Man', data: 'x' }], false), {
      certificateDevice: device,
    });
    assert.ok(r.status === 200 && 'body' in r && !r.unauthenticated);
    const [status] = parseSyncML(r.body).body;
    assert.ok(status?.kind === 'Status' && status.data === '200');
    assert.equal((await store.getDevice('D1'))!.info['DevInfo/Man'], 'x');
  });

  it('by certificate: a record marked unenrolled is refused with 403, and nothing recorded', async () => {
    await store.unenrollDevice('D1', new Date());
    const device = (await store.getDevice('D1'))!;
    const r = await mdm.session(message([{ source: './DevInfo/Man', data: 'x' }], false), {
      certificateDevice: device,
    });
    assert.equal(r.status, 403);
    assert.deepEqual((await store.getDevice('D1'))!.info, {});
    assert.equal((await store.getDevice('D1'))!.lastSeenAt, null);
  });
});
