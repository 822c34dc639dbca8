/**
 * The wap-provisioningdoc: Microsoft's example and the document a real Windows client installed
 * (testdata/mde2, provenance in its README) parse with every field asserted; documents we build
 * parse back to the same model, also through the enrollment response; bad documents are refused.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCertificate, sha1Thumbprint } from '../pki/x509.ts';
import {
  buildRequestSecurityTokenResponse,
  Mde2Error,
  parseRequestSecurityTokenResponse,
} from './mde2.ts';
import {
  buildProvisioningDoc,
  certificateEntry,
  parseProvisioningDoc,
  sslClientCertSearchCriteria,
  type ProvisioningDoc,
} from './provisioning.ts';
import { mde2Vector, rejectsMde2 } from './testing.ts';
import { attribute, child, childrenNamed, readXml, type XmlElement } from './xml.ts';

const fleetDoc = mde2Vector('fleet-poc-provisioning-doc.xml');
const fleet = parseProvisioningDoc(fleetDoc);
const rootDer = fleet.rootCertificates[0]!.der;
const leafDer = fleet.clientCertificate.der;

/** A document using every part of the model. */
const full: ProvisioningDoc = {
  rootCertificates: [certificateEntry(rootDer)],
  intermediateCertificates: [certificateEntry(leafDer)],
  clientCertificate: { ...certificateEntry(leafDer), store: 'System' },
  renew: { roboSupport: false, renewPeriodDays: 42, retryIntervalDays: 7 },
  application: {
    providerId: 'certpost',
    name: 'certpost & co <MDM>',
    addr: 'https://mdm.example.com/ManagementServer/MDM.svc',
    serverList: 'https://mdm.example.com/ManagementServer/ServerList.svc',
    role: 4294967295,
    backCompatRetryDisabled: true,
    defaultEncoding: 'application/vnd.syncml.dm+xml',
    sslClientCertSearchCriteria: sslClientCertSearchCriteria(leafDer, 'System'),
    connRetryFreq: 6,
    initialBackoffTime: 30000,
    maxBackoffTime: 120000,
    appAuth: [
      { level: 'CLIENT', type: 'DIGEST', name: 'server', secret: 's1', data: 'bm9uY2U=' },
      { level: 'APPSRV', type: 'BASIC', name: 'device-1', secret: 'p"w' },
    ],
  },
  dmClient: {
    providerId: 'certpost',
    entDeviceName: 'ann_Windows',
    entDMID: 'device-1',
    poll: {
      numberOfFirstRetries: 8,
      intervalForFirstSetOfRetries: 15,
      numberOfSecondRetries: 5,
      intervalForSecondSetOfRetries: 3,
      numberOfRemainingScheduledRetries: 0,
      intervalForRemainingScheduledRetries: 1560,
      pollOnLogin: true,
    },
  },
};

const tree = (xml: string) =>
  readXml(xml, (m) => {
    throw new Error(m);
  });
const characteristic = (e: XmlElement, type: string) =>
  childrenNamed(e, '', 'characteristic').filter((c) => attribute(c, 'type') === type);

describe('wap-provisioningdoc (MS-MDE2 §2.2.9.1)', () => {
  it('reads the document a real Windows client installed from Fleet’s PoC', () => {
    assert.deepEqual(
      fleet.rootCertificates.map((c) => c.thumbprint),
      ['D9A88E04AF18A4D399CEE62F2C71469C3AE1E675'],
    );
    assert.equal(fleet.clientCertificate.thumbprint, '8F2EBD13F3612D7C48C30E24CC73A88492613849');
    assert.equal(fleet.clientCertificate.store, 'User');
    // The characteristic names are the certificates' SHA-1 thumbprints.
    for (const c of [...fleet.rootCertificates, fleet.clientCertificate])
      assert.equal(sha1Thumbprint(parseCertificate(c.der)).toUpperCase(), c.thumbprint);
    assert.equal(fleet.intermediateCertificates, undefined);
    assert.equal(fleet.renew, undefined);
    assert.deepEqual(fleet.application, {
      providerId: 'DEMO MDM',
      name: 'FleetDM Demo Server - Windows',
      addr: 'https://windows.fleetdm.ngrok.io/ManagementServer/MDM.svc',
      serverList: 'https://windows.fleetdm.ngrok.io/ManagementServer/ServerList.svc',
      role: 4294967295,
      backCompatRetryDisabled: true,
      defaultEncoding: 'application/vnd.syncml.dm+xml',
      appAuth: [
        { level: 'CLIENT', type: 'DIGEST', secret: 'dummy', data: 'nonce' },
        { level: 'APPSRV', type: 'DIGEST', name: 'dummy', secret: 'dummy', data: 'nonce' },
      ],
    });
    assert.deepEqual(fleet.dmClient, { providerId: 'DEMO MDM', poll: { numberOfFirstRetries: 8 } });
  });

  it("reads Microsoft's example once its two certificate placeholders are filled", () => {
    const doc = parseProvisioningDoc(mde2Vector('ms-provisioning-doc-filled.xml'));
    assert.deepEqual(
      doc.rootCertificates.map((c) => [c.thumbprint, c.der]),
      [['031336C933CC7E228B88880D78824FB2909A0A2F', rootDer]],
    );
    assert.deepEqual(doc.clientCertificate, {
      thumbprint: 'F9A4F20FC50D990FDD0E3DB9AFCBF401818D5462',
      der: leafDer,
      store: 'User',
    });
    assert.deepEqual(doc.renew, { roboSupport: true, renewPeriodDays: 60, retryIntervalDays: 4 });
    assert.deepEqual(doc.application, {
      providerId: 'TestMDMServer',
      name: 'Microsoft',
      addr: 'https://DM.contoso.com:443/omadm/Windows.ashx',
      backCompatRetryDisabled: true,
      defaultEncoding: 'application/vnd.syncml.dm+wbxml',
      // The page escapes the & twice; the value read is what the page says.
      sslClientCertSearchCriteria:
        'Subject=DC%3dcom%2cDC%3dmicrosoft%2cCN%3dUsers%2cCN%3dAdministrator&amp;Stores=My%5CUser',
      connRetryFreq: 6,
      initialBackoffTime: 30000,
      maxBackoffTime: 120000,
      appAuth: [
        {
          level: 'CLIENT',
          type: 'DIGEST',
          secret: 'password1',
          data: 'B64encodedBinaryNonceInsertedHere',
        },
        { level: 'APPSRV', type: 'BASIC', name: 'testclient', secret: 'password2' },
      ],
    });
    assert.deepEqual(doc.dmClient, {
      providerId: 'TestMDMServer',
      entDeviceName: 'Administrator_Windows',
      poll: full.dmClient.poll,
    });
  });

  it("refuses Microsoft's example as published: its certificates are placeholders", () => {
    rejectsMde2(
      () => parseProvisioningDoc(mde2Vector('ms-provisioning-doc.xml')),
      'ERR_MDE2_MALFORMED',
      /Root\/System\/031336C9.* is not an X\.509 certificate/,
    );
  });

  it('parses back every document it builds', () => {
    assert.deepEqual(parseProvisioningDoc(buildProvisioningDoc(full)), full);
    assert.deepEqual(parseProvisioningDoc(buildProvisioningDoc(fleet)), fleet);
    const ms = parseProvisioningDoc(mde2Vector('ms-provisioning-doc-filled.xml'));
    assert.deepEqual(parseProvisioningDoc(buildProvisioningDoc(ms)), ms);
  });

  it('travels base64 in the enrollment response and comes out the same', () => {
    const rstr = buildRequestSecurityTokenResponse({
      relatesTo: 'urn:uuid:1',
      provisioningDoc: buildProvisioningDoc(full),
      requestId: '1',
      now: new Date(0),
    });
    assert.deepEqual(
      parseProvisioningDoc(parseRequestSecurityTokenResponse(rstr).provisioningDoc),
      full,
    );
  });

  it("lays the document out like Microsoft's example, datatypes where the CSPs need them", () => {
    const xml = buildProvisioningDoc(full);
    assert.ok(
      xml.startsWith('<?xml version="1.0" encoding="UTF-8"?><wap-provisioningdoc version="1.1">'),
    );
    const root = tree(xml);
    assert.deepEqual(
      childrenNamed(root, '', 'characteristic').map((c) => attribute(c, 'type')),
      ['CertificateStore', 'CertificateStore', 'APPLICATION', 'DMClient'],
    );
    const [anchors, mine] = characteristic(root, 'CertificateStore');
    assert.deepEqual(
      childrenNamed(anchors!, '', 'characteristic').map((c) => attribute(c, 'type')),
      ['Root', 'CA'],
    );
    const system = characteristic(characteristic(mine!, 'My')[0]!, 'System')[0]!;
    assert.deepEqual(
      childrenNamed(system, '', 'characteristic').map((c) => attribute(c, 'type')),
      [full.clientCertificate.thumbprint, 'PrivateKeyContainer'],
    );
    const renew = characteristic(
      characteristic(characteristic(mine!, 'My')[0]!, 'WSTEP')[0]!,
      'Renew',
    )[0]!;
    assert.deepEqual(
      childrenNamed(renew, '', 'parm').map((p) => [
        attribute(p, 'name'),
        attribute(p, 'value'),
        attribute(p, 'datatype'),
      ]),
      [
        ['ROBOSupport', 'false', 'boolean'],
        ['RenewPeriod', '42', 'integer'],
        ['RetryInterval', '7', 'integer'],
      ],
    );
    const app = characteristic(root, 'APPLICATION')[0]!;
    const parms = childrenNamed(app, '', 'parm');
    assert.deepEqual(parms[0] && [attribute(parms[0], 'name'), attribute(parms[0], 'value')], [
      'APPID',
      'w7',
    ]);
    const back = parms.find((p) => attribute(p, 'name') === 'BACKCOMPATRETRYDISABLED')!;
    assert.equal(attribute(back, 'value'), undefined);
    const provider = characteristic(
      characteristic(characteristic(root, 'DMClient')[0]!, 'Provider')[0]!,
      'certpost',
    )[0]!;
    assert.ok(characteristic(provider, 'Poll')[0]);
    assert.deepEqual(
      childrenNamed(characteristic(provider, 'Poll')[0]!, '', 'parm').map((p) =>
        attribute(p, 'datatype'),
      ),
      ['integer', 'integer', 'integer', 'integer', 'integer', 'integer', 'boolean'],
    );
    assert.equal(
      child(provider, '', 'parm') && attribute(child(provider, '', 'parm')!, 'datatype'),
      'string',
    );
  });

  it('writes SSLCLIENTCERTSEARCHCRITERIA as the w7 APPLICATION CSP describes it', () => {
    assert.equal(
      sslClientCertSearchCriteria(leafDer),
      'Subject=CN%3DB5B954E81FBCB94EB79BD08BE625F4EE&Stores=My%5CUser',
    );
    // Encoding order, as Microsoft's example; reserved and non-ASCII characters %-escaped (UTF-8).
    assert.equal(
      sslClientCertSearchCriteria('DC=com,DC=microsoft,CN=Users,CN=Administrator'),
      'Subject=DC%3Dcom%2CDC%3Dmicrosoft%2CCN%3DUsers%2CCN%3DAdministrator&Stores=My%5CUser',
    );
    assert.equal(
      sslClientCertSearchCriteria("CN=Zoë O'Neil (x)", 'System'),
      "Subject=CN%3DZo%C3%AB%20O'Neil%20(x)&Stores=My%5CSystem",
    );
    // In the document the & is escaped once, and reads back as &.
    const xml = buildProvisioningDoc(full);
    assert.ok(xml.includes('&amp;Stores=My%5CSystem"'));
    assert.equal(
      parseProvisioningDoc(xml).application.sslClientCertSearchCriteria,
      full.application.sslClientCertSearchCriteria,
    );
  });

  it('refuses documents that do not say what an enrollment must', () => {
    const cases: [string, string | RegExp, string, RegExp][] = [
      ['root', /wap-provisioningdoc/g, 'provisioningdoc', /not wap-provisioningdoc/],
      ['version', 'version="1.1"', 'version="1.0"', /version is "1\.0"/],
      [
        'no client',
        /<characteristic type="My">.*?PrivateKeyContainer" \/><\/characteristic><\/characteristic>/,
        '',
        /found 0/,
      ],
      ['no w7', '"APPID" value="w7"', '"APPID" value="w4"', /no w7 APPLICATION/],
      [
        'provider',
        '<characteristic type="DEMO MDM">',
        '<characteristic type="OTHER">',
        /no Provider "DEMO MDM"/,
      ],
      [
        'datatype',
        'value="8" datatype="integer"',
        'value="8" datatype="boolean"',
        /declared "boolean", not integer/,
      ],
      [
        'integer',
        'value="8" datatype="integer"',
        'value="eight" datatype="integer"',
        /not a non-negative integer/,
      ],
      ['level', 'value="APPSRV"', 'value="ROOT"', /AAUTHLEVEL is "ROOT"/],
      [
        'thumbprint',
        'type="D9A88E04AF18A4D399CEE62F2C71469C3AE1E675"',
        'type="D9A8"',
        /not a SHA-1 thumbprint/,
      ],
      [
        'missing',
        '<parm name="ADDR" value="https://windows.fleetdm.ngrok.io/ManagementServer/MDM.svc" />',
        '',
        /has no ADDR/,
      ],
    ];
    for (const [what, from, to, detail] of cases) {
      const bad = fleetDoc.replace(from, to);
      assert.notEqual(bad, fleetDoc, what);
      rejectsMde2(() => parseProvisioningDoc(bad), 'ERR_MDE2_MALFORMED', detail);
    }
    const two = fleetDoc.replace(
      '<characteristic type="PrivateKeyContainer" />',
      `<characteristic type="PrivateKeyContainer" /></characteristic><characteristic type="System"><characteristic type="${fleet.clientCertificate.thumbprint}"><parm name="EncodedCertificate" value="${Buffer.from(leafDer).toString('base64')}" /></characteristic>`,
    );
    rejectsMde2(() => parseProvisioningDoc(two), 'ERR_MDE2_MALFORMED', /found 2/);
  });

  it('refuses hostile input with the guard’s codes', () => {
    rejectsMde2(
      () => parseProvisioningDoc(`<!DOCTYPE wap-provisioningdoc [<!ENTITY a "a">]>${fleetDoc}`),
      'ERR_MDE2_FORBIDDEN_DOCTYPE',
    );
    rejectsMde2(
      () => parseProvisioningDoc(fleetDoc, { maxBytes: 1024, maxDepth: 32 }),
      'ERR_MDE2_LIMIT',
    );
    rejectsMde2(
      () => parseProvisioningDoc(fleetDoc, { maxBytes: 1 << 20, maxDepth: 3 }),
      'ERR_MDE2_LIMIT',
    );
    rejectsMde2(() => parseProvisioningDoc(fleetDoc.slice(0, 200)), 'ERR_MDE2_MALFORMED');
  });

  it('refuses to build what Windows could not use', () => {
    const bad: [string, ProvisioningDoc][] = [
      ['thumbprint', { ...full, rootCertificates: [{ thumbprint: 'abc', der: rootDer }] }],
      [
        'integer',
        { ...full, renew: { roboSupport: true, renewPeriodDays: 1.5, retryIntervalDays: 1 } },
      ],
      ['negative', { ...full, application: { ...full.application, maxBackoffTime: -1 } }],
      ['provider', { ...full, dmClient: { ...full.dmClient, providerId: 'other' } }],
    ];
    for (const [what, doc] of bad)
      assert.throws(
        () => buildProvisioningDoc(doc),
        (e) => e instanceof Mde2Error && e.code === 'ERR_MDE2_INVALID_ARGUMENT',
        what,
      );
  });
});
