/**
 * What the server sends is SyncML as Windows reads it: well-formed, every element's children in
 * the order the SyncML DM 1.2 DTD (OMA-SUP-DTD_SyncML_RepPro-V1_2) and the MetInf DTD give, and
 * the certificate CSP commands in the shape of Microsoft's published examples
 * (src/device/testdata/ms-examples, same leaves with the same Meta/Format, Exec Enroll last).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { XMLParser } from 'fast-xml-parser';
import { md5Challenge, newNonce } from '../omadm/auth.ts';
import {
  addTrustedCertificate,
  deleteScep,
  inventoryGet,
  pfxInstall,
  scepInstall,
  scepStatus,
} from '../omadm/csp-commands.ts';
import { answerDevice } from '../omadm/server-session.ts';
import { buildSyncML, parseSyncML, type Command } from '../omadm/syncml.ts';

type Rule = readonly [name: string, min: 0 | 1, max: 1 | 'n'];
const COMMANDS = [
  'Add',
  'Alert',
  'Atomic',
  'Delete',
  'Exec',
  'Get',
  'Replace',
  'Results',
  'Status',
];
const ITEM_COMMAND: readonly Rule[] = [
  ['CmdID', 1, 1],
  ['NoResp', 0, 1],
  ['Cred', 0, 1],
  ['Meta', 0, 1],
  ['Item', 1, 'n'],
];

/** Content models, in DTD order (sequences only; a command list is any of COMMANDS). */
const DTD: Readonly<Record<string, readonly Rule[]>> = {
  SyncML: [
    ['SyncHdr', 1, 1],
    ['SyncBody', 1, 1],
  ],
  SyncHdr: [
    ['VerDTD', 1, 1],
    ['VerProto', 1, 1],
    ['SessionID', 1, 1],
    ['MsgID', 1, 1],
    ['Target', 1, 1],
    ['Source', 1, 1],
    ['RespURI', 0, 1],
    ['NoResp', 0, 1],
    ['Cred', 0, 1],
    ['Meta', 0, 1],
  ],
  Status: [
    ['CmdID', 1, 1],
    ['MsgRef', 1, 1],
    ['CmdRef', 1, 1],
    ['Cmd', 1, 1],
    ['TargetRef', 0, 'n'],
    ['SourceRef', 0, 'n'],
    ['Cred', 0, 1],
    ['Chal', 0, 1],
    ['Data', 1, 1],
    ['Item', 0, 'n'],
  ],
  Alert: [
    ['CmdID', 1, 1],
    ['NoResp', 0, 1],
    ['Cred', 0, 1],
    ['Data', 0, 1],
    ['Correlator', 0, 1],
    ['Item', 0, 'n'],
  ],
  Add: ITEM_COMMAND,
  Replace: ITEM_COMMAND,
  Delete: ITEM_COMMAND,
  Get: ITEM_COMMAND,
  Exec: [
    ['CmdID', 1, 1],
    ['NoResp', 0, 1],
    ['Cred', 0, 1],
    ['Meta', 0, 1],
    ['Correlator', 0, 1],
    ['Item', 1, 1],
  ],
  Item: [
    ['Target', 0, 1],
    ['Source', 0, 1],
    ['Meta', 0, 1],
    ['Data', 0, 1],
    ['MoreData', 0, 1],
  ],
  Target: [
    ['LocURI', 1, 1],
    ['LocName', 0, 1],
  ],
  Source: [
    ['LocURI', 1, 1],
    ['LocName', 0, 1],
  ],
  Chal: [['Meta', 1, 1]],
  // MetInf DTD order.
  Meta: [
    ['Format', 0, 1],
    ['Type', 0, 1],
    ['Mark', 0, 1],
    ['Size', 0, 1],
    ['NextNonce', 0, 1],
    ['Version', 0, 1],
    ['MaxMsgSize', 0, 1],
    ['MaxObjSize', 0, 1],
  ],
};

type Node = Record<string, unknown>;
const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  parseTagValue: false,
});
const nameOf = (n: Node) => Object.keys(n).find((k) => k !== ':@')!;
const kids = (n: Node) => (n[nameOf(n)] as Node[]).filter((k) => nameOf(k) !== '#text');

/** Every element whose children break its content model, as `path: problem`. */
function dtdProblems(n: Node, path = ''): string[] {
  const name = nameOf(n);
  const here = `${path}/${name}`;
  const children = kids(n);
  const problems: string[] = [];
  const names = children.map(nameOf);
  if (name === 'SyncBody' || name === 'Atomic') {
    const start = name === 'Atomic' ? ['CmdID'] : [];
    if (names.slice(0, start.length).join() !== start.join())
      problems.push(`${here}: no CmdID first`);
    const rest = names.slice(start.length).filter((x) => x !== 'Meta');
    const final = rest.indexOf('Final');
    if (final >= 0 && final !== rest.length - 1) problems.push(`${here}: Final not last`);
    for (const x of rest)
      if (x !== 'Final' && !COMMANDS.includes(x)) problems.push(`${here}: ${x}`);
  } else if (DTD[name]) {
    let i = 0;
    for (const [rule, min, max] of DTD[name]) {
      const limit = max === 'n' ? Infinity : max;
      let count = 0;
      for (; names[i] === rule && count < limit; i++) count++;
      if (count < min) problems.push(`${here}: ${rule} missing`);
    }
    if (i < names.length) problems.push(`${here}: ${names[i]} out of order`);
  }
  for (const c of children) problems.push(...dtdProblems(c, here));
  return problems;
}

const device = {
  header: {
    sessionId: '3',
    msgId: '1',
    target: 'https://mdm.example.test/ManagementServer/MDM.svc',
    source: 'DEVICE-1',
  },
  body: [{ kind: 'Alert', cmdId: '1', data: '1201', items: [] }] as Command[],
  final: true,
};
/** Any bytes stand for the certificate: the builder hashes and base64-encodes them. */
const ca = new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x01]);
const scep = scepInstall({
  scope: 'device',
  id: 'wifi',
  serverUrls: ['https://mdm.example.test/scep'],
  challenge: 'c',
  subjectName: 'CN=d',
  subjectAlternativeNames: '3+d.example.test',
  ekus: ['1.3.6.1.5.5.7.3.2'],
  keyUsage: 0xa0,
  keyProtection: 2,
  keyLength: 2048,
  hashAlgorithm: 'SHA-2',
  caThumbprint: '00'.repeat(20),
  validPeriod: 'Days',
  validPeriodUnits: 30,
});

describe('SyncML the server sends', () => {
  it('is well-formed and follows the DTD order in every element', () => {
    const queue = [
      addTrustedCertificate('device', 'Root', ca),
      scep,
      scepStatus('device', 'wifi'),
      pfxInstall({
        scope: 'user',
        id: 'mail',
        pfx: new Uint8Array([1, 2, 3]),
        password: 'ZW52ZWxvcGU=',
        passwordEncryptionType: 1,
        keyLocation: 3,
        exportable: true,
      }),
      inventoryGet(),
      deleteScep('device', 'old'),
    ].map((command, i) => ({ id: `c${i}`, command, sentSession: null }));
    const step = answerDevice({
      message: device,
      queue,
      headerChallenge: md5Challenge(newNonce()),
    });
    const xml = buildSyncML(step.reply);
    assert.deepEqual(parseSyncML(xml).body.length, step.reply.body.length, 'reads back');
    const [root] = parser.parse(xml) as Node[];
    assert.deepEqual(dtdProblems(root!), []);
  });

  it('the checker is not blind: a header with Source before Target is caught', () => {
    const xml = buildSyncML(answerDevice({ message: device, queue: [] }).reply).replace(
      /(<Target>.*?<\/Target>)(<Source>.*?<\/Source>)/,
      '$2$1',
    );
    const [root] = parser.parse(xml) as Node[];
    assert.deepEqual(dtdProblems(root!), [
      '/SyncML/SyncHdr: Target missing',
      '/SyncML/SyncHdr: Target out of order',
    ]);
  });

  it('a SCEP install has the shape of Microsoft`s ClientCertificateInstall example', () => {
    const example = readFileSync(
      new URL('../device/testdata/ms-examples/clientcertificateinstall-scep.xml', import.meta.url),
      'utf8',
    )
      .replace(/<InsertUniqueIDHere>/g, 'wifi')
      .replace('313$', '313');
    const theirs = leafFormats(
      parseSyncML(
        `${example}`.replace(
          '<SyncBody>',
          '<SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto><SessionID>1</SessionID><MsgID>1</MsgID><Target><LocURI>d</LocURI></Target><Source><LocURI>s</LocURI></Source></SyncHdr><SyncBody>',
        ),
      ).body,
    );
    const ours = leafFormats([scep]);
    // Every leaf Microsoft sets, we set with the same Meta/Format; Exec Enroll last in both.
    for (const [leaf, format] of theirs.formats)
      if (ours.formats.has(leaf)) assert.equal(ours.formats.get(leaf), format, leaf);
    const required = [
      'ServerURL',
      'Challenge',
      'EKUMapping',
      'KeyUsage',
      'SubjectName',
      'KeyProtection',
      'RetryDelay',
      'RetryCount',
      'KeyLength',
      'HashAlgorithm',
      'CAThumbprint',
    ];
    for (const leaf of required) assert.ok(ours.formats.has(leaf), leaf);
    assert.deepEqual(ours.last, theirs.last);
    assert.equal(ours.first, theirs.first, 'both start by adding the enrollment node');
  });
});

/** A command as `Kind target format`, the enrollment id generalised. */
const describe1 = (c: Command): string => {
  if (c.kind !== 'Add' && c.kind !== 'Exec') return c.kind;
  const item = c.items[0];
  const where = item?.target?.replace(/^.*\/SCEP\/[^/]+/, 'SCEP/{id}') ?? '';
  return `${c.kind} ${where} ${item?.meta?.format ?? ''}`.trim();
};

/** Install leaves → Meta/Format of the Adds in an Atomic, and its first and last commands. */
function leafFormats(body: readonly Command[]): {
  formats: Map<string, string | undefined>;
  first: string;
  last: string;
} {
  const atomic = body.find((c) => c.kind === 'Atomic');
  assert.ok(atomic?.kind === 'Atomic');
  const formats = new Map<string, string | undefined>();
  for (const c of atomic.commands)
    if (c.kind === 'Add')
      for (const i of c.items) {
        const m = /\/Install\/([^/]+)$/.exec(i.target ?? '');
        if (m) formats.set(m[1]!, i.meta?.format);
      }
  return {
    formats,
    first: describe1(atomic.commands[0]!),
    last: describe1(atomic.commands.at(-1)!),
  };
}
