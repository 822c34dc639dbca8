/** The device's answers to server messages: statuses, results, Atomic roll-back. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseDdf } from '../omadm/ddf.ts';
import { buildSyncML, parseSyncML, type Command, type SyncMLMessage } from '../omadm/syncml.ts';
import { needsReply, respond } from './session.ts';
import { ManagementTree } from './tree.ts';

const DDF_DIR = new URL('../omadm/ddf/', import.meta.url).pathname;
const roots = ['RootCATrustedCertificates', 'ClientCertificateInstall'].flatMap((n) =>
  parseDdf(readFileSync(`${DDF_DIR}${n}.xml`, 'utf8')),
);
const CA = './Device/Vendor/MSFT/RootCATrustedCertificates/CA';
const SCEP = './Device/Vendor/MSFT/ClientCertificateInstall/SCEP/wifi';

function server(body: Command[], msgId = '2'): SyncMLMessage {
  return {
    header: {
      sessionId: '7',
      msgId,
      target: 'DEVICE-1',
      source: 'https://mdm.example.test/ManagementServer/MDM.svc',
    },
    body,
    final: true,
  };
}

/** `cmdRef → status code` of a reply, in order. */
const statuses = (r: SyncMLMessage) =>
  r.body.flatMap((c) => (c.kind === 'Status' ? [`${c.cmd}:${c.cmdRef}=${c.data}`] : []));

describe('device session', () => {
  it('answers the header and every command, with Results for a Get, MsgRef = the server MsgID', async () => {
    const tree = new ManagementTree(roots, { exec: () => 202 });
    const reply = await respond(
      tree,
      server([
        { kind: 'Status', cmdId: '1', msgRef: '1', cmdRef: '0', cmd: 'SyncHdr', data: '200' },
        {
          kind: 'Add',
          cmdId: '2',
          items: [
            { target: `${CA}/AA11/EncodedCertificate`, meta: { format: 'b64' }, data: 'MIIA' },
          ],
        },
        { kind: 'Get', cmdId: '3', items: [{ target: CA }] },
        {
          kind: 'Add',
          cmdId: '4',
          items: [{ target: `${CA}/AA11/EncodedCertificate`, data: 'MIIA' }],
        },
        { kind: 'Exec', cmdId: '5', items: [{ target: `${SCEP}/Install/Enroll` }] },
        { kind: 'Unknown', name: 'Search', cmdId: '6' },
      ]),
      { msgId: '3' },
    );
    assert.deepEqual(reply.header, {
      sessionId: '7',
      msgId: '3',
      target: 'https://mdm.example.test/ManagementServer/MDM.svc',
      source: 'DEVICE-1',
    });
    assert.deepEqual(statuses(reply), [
      'SyncHdr:0=200',
      'Add:2=200',
      'Get:3=200',
      'Add:4=418',
      'Exec:5=404',
      'Search:6=400',
    ]);
    const results = reply.body.find((c) => c.kind === 'Results');
    assert.deepEqual(results?.kind === 'Results' && [results.cmdRef, results.items], [
      '3',
      [{ source: CA, meta: { format: 'node' }, data: 'AA11' }],
    ]);
    assert.ok(reply.body.every((c) => c.kind !== 'Status' || c.msgRef === '2'));
    assert.deepEqual(
      reply.body.map((c) => ('cmdId' in c ? c.cmdId : '')),
      ['1', '2', '3', '4', '5', '6', '7'],
    );
    // The reply is valid SyncML that reads back the same.
    assert.deepEqual(parseSyncML(buildSyncML(reply)), reply);
  });

  it('rolls an Atomic back when a child fails: 507, 216 for what ran, 215 for what did not', async () => {
    const tree = new ManagementTree(roots);
    const reply = await respond(
      tree,
      server([
        {
          kind: 'Atomic',
          cmdId: '10',
          commands: [
            {
              kind: 'Add',
              cmdId: '11',
              items: [
                { target: `${SCEP}/Install/ServerURL`, data: 'https://ca.example.test/scep' },
              ],
            },
            {
              kind: 'Add',
              cmdId: '12',
              items: [{ target: `${SCEP}/Install/KeyUsage`, data: 'lots' }],
            },
            {
              kind: 'Add',
              cmdId: '13',
              items: [{ target: `${SCEP}/Install/KeyLength`, data: '2048' }],
            },
          ],
        },
      ]),
      { msgId: '2' },
    );
    assert.deepEqual(statuses(reply), [
      'SyncHdr:0=200',
      'Atomic:10=507',
      'Add:11=216',
      'Add:12=400',
      'Add:13=215',
    ]);
    assert.equal(
      tree.get(`${SCEP}/Install/ServerURL`).status,
      404,
      'nothing of the Atomic remains',
    );
    assert.equal(tree.get(SCEP).status, 404, 'not even the implicitly added node');
  });

  it('keeps a successful Atomic, refuses a Get and a nested Atomic inside one', async () => {
    const tree = new ManagementTree(roots);
    const ok = await respond(
      tree,
      server([
        {
          kind: 'Atomic',
          cmdId: '1',
          commands: [
            {
              kind: 'Add',
              cmdId: '2',
              items: [{ target: `${SCEP}/Install/KeyLength`, data: '2048' }],
            },
          ],
        },
      ]),
      { msgId: '2' },
    );
    assert.deepEqual(statuses(ok), ['SyncHdr:0=200', 'Atomic:1=200', 'Add:2=200']);
    assert.equal(tree.get(`${SCEP}/Install/KeyLength`).items[0]?.data, '2048');
    const nested = await respond(
      tree,
      server([
        { kind: 'Atomic', cmdId: '1', commands: [{ kind: 'Unknown', name: 'Atomic', cmdId: '2' }] },
      ]),
      { msgId: '3' },
    );
    assert.deepEqual(statuses(nested), ['SyncHdr:0=200', 'Atomic:1=507', 'Atomic:2=500']);
    const get = await respond(
      tree,
      server([
        {
          kind: 'Atomic',
          cmdId: '1',
          commands: [{ kind: 'Get', cmdId: '2', items: [{ target: SCEP }] }],
        },
      ]),
      { msgId: '4' },
    );
    assert.deepEqual(statuses(get), ['SyncHdr:0=200', 'Atomic:1=507', 'Get:2=400']);
  });

  it('knows when the session is over: a server message of Statuses only needs no reply', async () => {
    assert.equal(
      needsReply(
        server([
          { kind: 'Status', cmdId: '1', msgRef: '3', cmdRef: '0', cmd: 'SyncHdr', data: '200' },
        ]),
      ),
      false,
    );
    assert.equal(needsReply(server([{ kind: 'Get', cmdId: '2', items: [{ target: CA }] }])), true);
  });
});

describe('device session: packages over several messages', () => {
  it('answers a server message without Final with its Statuses and Alert 1222', async () => {
    const tree = new ManagementTree(roots, {}, { values: {}, created: [] });
    const msg = { ...server([{ kind: 'Get', cmdId: '2', items: [{ target: CA }] }]), final: false };
    assert.equal(needsReply(msg), true);
    const reply = await respond(tree, msg, { msgId: '2' });
    assert.deepEqual(
      reply.body.map((c) => (c.kind === 'Alert' ? `Alert ${c.data}` : c.kind)),
      ['Status', 'Status', 'Results', 'Alert 1222'],
    );
    assert.equal(needsReply({ ...server([]), final: false }), true, 'even with only Statuses');
  });
});
