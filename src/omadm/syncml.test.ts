/** The SyncML codec: real-shaped messages, order, escaping, and hostile input. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { buildSyncML, parseSyncML, SyncMLError, type SyncMLMessage } from './syncml.ts';

const pkg1 = readFileSync(new URL('./testdata/client-pkg1.xml', import.meta.url), 'utf8');

function rejects(
  input: string,
  code: SyncMLError['code'],
  limits?: { maxBytes?: number; maxDepth?: number },
): void {
  assert.throws(
    () => parseSyncML(input, limits),
    (e) => e instanceof SyncMLError && e.code === code,
  );
}

describe('SyncML', () => {
  it('reads a Windows client package 1: header, alerts, DevInfo, Final', () => {
    const m = parseSyncML(pkg1);
    assert.deepEqual(m.header, {
      sessionId: '1',
      msgId: '1',
      target: 'https://mdm.contoso.com/ManagementServer/MDM.svc',
      source: '1F5C2A8E4B7D4E6F9A0B1C2D3E4F5A6B',
    });
    assert.equal(m.final, true);
    assert.deepEqual(
      m.body.map((c) => c.kind),
      ['Alert', 'Alert', 'Replace'],
    );
    const [a1, a2, rep] = m.body;
    assert.equal(a1?.kind === 'Alert' && a1.data, '1201');
    assert.deepEqual(a2?.kind === 'Alert' && a2.items, [
      { meta: { type: 'com.microsoft/MDM/LoginStatus' }, data: 'user' },
    ]);
    assert.deepEqual(rep?.kind === 'Replace' && rep.items.map((i) => [i.source, i.data]), [
      ['./DevInfo/DevId', '1F5C2A8E4B7D4E6F9A0B1C2D3E4F5A6B'],
      ['./DevInfo/Man', 'Microsoft Corporation'],
      ['./DevInfo/Mod', 'Lumia 950'],
      ['./DevInfo/DmV', '1.3'],
      ['./DevInfo/Lang', 'en-US'],
    ]);
  });

  it('builds a server package that reads back identically, order kept inside Atomic', () => {
    const msg: SyncMLMessage = {
      header: {
        sessionId: '1',
        msgId: '1',
        target: '1F5C2A8E',
        source: 'https://mdm.contoso.com/ManagementServer/MDM.svc',
      },
      body: [
        { kind: 'Status', cmdId: '1', msgRef: '1', cmdRef: '0', cmd: 'SyncHdr', data: '200' },
        { kind: 'Status', cmdId: '2', msgRef: '1', cmdRef: '2', cmd: 'Alert', data: '200' },
        {
          kind: 'Atomic',
          cmdId: '3',
          commands: [
            {
              kind: 'Add',
              cmdId: '4',
              items: [
                {
                  target: './Device/Vendor/MSFT/ClientCertificateInstall/SCEP/wifi-1',
                  meta: { format: 'node' },
                },
              ],
            },
            {
              kind: 'Add',
              cmdId: '5',
              items: [
                {
                  target:
                    './Device/Vendor/MSFT/ClientCertificateInstall/SCEP/wifi-1/Install/Challenge',
                  meta: { format: 'chr' },
                  data: 'p&ss<word>"',
                },
              ],
            },
            {
              kind: 'Add',
              cmdId: '6',
              items: [
                {
                  target:
                    './Device/Vendor/MSFT/ClientCertificateInstall/SCEP/wifi-1/Install/KeyUsage',
                  meta: { format: 'int' },
                  data: '160',
                },
              ],
            },
            {
              kind: 'Exec',
              cmdId: '7',
              items: [
                {
                  target:
                    './Device/Vendor/MSFT/ClientCertificateInstall/SCEP/wifi-1/Install/Enroll',
                },
              ],
            },
          ],
        },
        {
          kind: 'Get',
          cmdId: 'b1946ac9-2f5c-4d5e-8f1a-000000000001',
          items: [{ target: './Device/Vendor/MSFT/RootCATrustedCertificates/Root' }],
        },
        {
          kind: 'Replace',
          cmdId: '9',
          items: [
            {
              target: './Vendor/MSFT/x',
              meta: { format: 'xml', type: 'text/plain' },
              data: '<wap-provisioningdoc version="1.1"><characteristic type="x"/></wap-provisioningdoc>',
            },
          ],
        },
      ],
      final: true,
    };
    const xml = buildSyncML(msg);
    assert.match(
      xml,
      /^<SyncML xmlns="SYNCML:SYNCML1\.2"><SyncHdr><VerDTD>1\.2<\/VerDTD><VerProto>DM\/1\.2<\/VerProto>/,
    );
    assert.match(xml, /<Format xmlns="syncml:metinf">chr<\/Format>/);
    assert.match(
      xml,
      /<Data>p&amp;ss&lt;word&gt;"<\/Data>|<Data>p&amp;ss&lt;word&gt;&quot;<\/Data>/,
    );
    assert.match(xml, /<Final\/><\/SyncBody>/);
    assert.deepEqual(parseSyncML(xml), msg);
  });

  it('reads Data holding elements (Format xml) as their XML text, and trims plain values', () => {
    const xml = pkg1.replace(
      '<Final/>',
      '<Results><CmdID>7</CmdID><MsgRef>1</MsgRef><CmdRef>3</CmdRef><Item><Source><LocURI> ./x </LocURI></Source>' +
        '<Meta><Format xmlns="syncml:metinf">xml</Format></Meta>' +
        '<Data>\n  <doc v="1&amp;2"><e>a &lt; b</e></doc>\n</Data></Item></Results><Final/>',
    );
    const results = parseSyncML(xml).body.find((c) => c.kind === 'Results');
    assert.equal(results?.kind, 'Results');
    assert.deepEqual(results.items[0], {
      source: './x',
      meta: { format: 'xml' },
      data: '<doc v="1&amp;2"><e>a &lt; b</e></doc>',
    });
  });

  it('reads an empty Meta as none, so that a message builds back to itself (fuzzing regression)', () => {
    const xml = pkg1.replace(
      '<Final/>',
      '<Replace><CmdID>7</CmdID><Item><Target><LocURI>./x</LocURI></Target><Meta></Meta><Data></Data></Item></Replace><Final/>',
    );
    const message = parseSyncML(xml);
    const replace = message.body.findLast((c) => c.kind === 'Replace');
    assert.equal(replace?.kind, 'Replace');
    assert.deepEqual(replace.items[0], { target: './x', data: '' });
    assert.deepEqual(parseSyncML(buildSyncML(message)), message);
  });

  it('keeps an element it does not know, and a nested Atomic, as Unknown (to be answered 400/500)', () => {
    const xml = pkg1.replace(
      '<Final/>',
      '<Search><CmdID>9</CmdID></Search><Atomic><CmdID>10</CmdID><Atomic><CmdID>11</CmdID></Atomic></Atomic><Final/>',
    );
    const m = parseSyncML(xml);
    assert.deepEqual(m.body[3], { kind: 'Unknown', name: 'Search', cmdId: '9' });
    const atomic = m.body[4];
    assert.equal(atomic?.kind, 'Atomic');
    assert.deepEqual(atomic?.kind === 'Atomic' && atomic.commands, [
      { kind: 'Unknown', name: 'Atomic', cmdId: '11' },
    ]);
  });

  it('refuses a DOCTYPE (XXE, entity expansion), oversize and over-deep input, and broken XML', () => {
    rejects(
      `<!DOCTYPE SyncML [<!ENTITY x SYSTEM "file:///etc/passwd">]>${pkg1}`,
      'ERR_SYNCML_FORBIDDEN_DOCTYPE',
    );
    rejects(
      `<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>${pkg1}`,
      'ERR_SYNCML_FORBIDDEN_DOCTYPE',
    );
    rejects(pkg1, 'ERR_SYNCML_LIMIT', { maxBytes: 100 });
    rejects(
      `<SyncML>${'<a>'.repeat(100_000)}${'</a>'.repeat(100_000)}</SyncML>`,
      'ERR_SYNCML_LIMIT',
    );
    rejects(pkg1.slice(0, 200), 'ERR_SYNCML_MALFORMED');
    rejects('<SyncML xmlns="SYNCML:SYNCML1.2"><SyncBody/></SyncML>', 'ERR_SYNCML_MALFORMED');
    rejects(pkg1.replace('<MsgID>1</MsgID>', ''), 'ERR_SYNCML_MALFORMED');
    rejects('not xml at all', 'ERR_SYNCML_MALFORMED');
  });
});
