/**
 * The MS-MDE2 messages: every saved real message (testdata/mde2, provenance in its README) is
 * read with its fields asserted; our builders are checked against Windows' own bytes and read
 * back; envelopes, faults and every refusal get their namespaces, actions and error codes checked.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCsr } from '../pki/csr.ts';
import { formatName } from '../pki/x509.ts';
import {
  ACTIONS,
  BASE64_ENCODING,
  buildDiscoverRequest,
  buildDiscoverResponse,
  buildGetPoliciesRequest,
  buildGetPoliciesResponse,
  buildRequestSecurityToken,
  buildRequestSecurityTokenResponse,
  buildSoapFault,
  DEVICE_ENROLLMENT_TOKEN,
  MDE2_ERRORS,
  Mde2Error,
  NS,
  parseDiscoverRequest,
  parseDiscoverResponse,
  parseGetPoliciesRequest,
  parseGetPoliciesResponse,
  parseRequestSecurityToken,
  parseRequestSecurityTokenResponse,
  parseSoapFault,
  PASSWORD_TEXT,
  PROVISION_DOC_VALUE_TYPE,
  SOAP_FAULT_SUBCODES,
  USERNAME_TOKEN_ID,
  type SoapFaultSubcode,
} from './mde2.ts';
import { mde2Vector, rejectsMde2 } from './testing.ts';
import { attribute, child, readXml, resolveQName, type XmlElement } from './xml.ts';

/** Our own messages read as plain XML, to check what is on the wire. */
const tree = (xml: string) =>
  readXml(xml, (m) => {
    throw new Error(m);
  });

function path(root: XmlElement, ...steps: [ns: string, name: string][]): XmlElement {
  let at = root;
  for (const [ns, name] of steps) {
    const next = child(at, ns, name);
    assert.ok(next, `no {${ns}}${name} under ${at.name}`);
    at = next;
  }
  return at;
}

/** SOAP 1.2 envelope, Action with mustUnderstand, and the payload's namespace and name. */
function assertEnvelope(xml: string, action: string, payload: [ns: string, name: string]) {
  const root = tree(xml);
  assert.deepEqual([root.ns, root.name], [NS.soap, 'Envelope']);
  const a = path(root, [NS.soap, 'Header'], [NS.addressing, 'Action']);
  assert.equal(a.text, action);
  assert.equal(attribute(a, 'mustUnderstand', NS.soap), '1');
  const body = path(root, [NS.soap, 'Body']);
  assert.equal(body.children.length, 1);
  assert.deepEqual([body.children[0]!.ns, body.children[0]!.name], payload);
  return root;
}

function assertRequestAddressing(root: XmlElement, messageId: string, to: string) {
  const header = path(root, [NS.soap, 'Header']);
  assert.equal(path(header, [NS.addressing, 'MessageID']).text, messageId);
  assert.equal(
    path(header, [NS.addressing, 'ReplyTo'], [NS.addressing, 'Address']).text,
    `${NS.addressing}/anonymous`,
  );
  const t = path(header, [NS.addressing, 'To']);
  assert.equal(t.text, to);
  assert.equal(attribute(t, 'mustUnderstand', NS.soap), '1');
}

// Windows' real requests, used as a base for the hostile variants below.
const windowsDiscover = mde2Vector('windows-discover-request.xml');
const windowsGetPolicies = mde2Vector('windows-getpolicies-request.xml');
const windowsRst = mde2Vector('windows-rst-request.xml');

describe('MS-MDE2 discovery (§3.1)', () => {
  it('reads Windows 10 Discover', () => {
    assert.deepEqual(parseDiscoverRequest(windowsDiscover), {
      messageId: 'urn:uuid:748132ec-a575-4329-b01b-6171a9cf8478',
      to: 'https://EnterpriseEnrollment.fleetdm.ngrok.io:443/EnrollmentServer/Discovery.svc',
      emailAddress: 'demo@fleetdm.ngrok.io',
      requestVersion: '4.0',
      deviceType: 'CIMClient_Windows',
      applicationVersion: '10.0.19043.2364',
      osEdition: '72',
      authPolicies: ['OnPremise', 'Federated'],
    });
  });

  it("reads Microsoft's example: namespace with a trailing slash, whitespace, comments", () => {
    assert.deepEqual(parseDiscoverRequest(mde2Vector('ms-discover-request.xml')), {
      messageId: 'urn:uuid: 748132ec-a575-4329-b01b-6171a9cf8478',
      to: 'https://ENROLLTEST.CONTOSO.COM/EnrollmentServer/Discovery.svc',
      emailAddress: 'user@contoso.com',
      requestVersion: '3.0',
      deviceType: 'WindowsPhone',
      applicationVersion: '10.0.0.0',
      osEdition: '3',
      authPolicies: ['OnPremise'],
    });
  });

  it("reads the discovery responses of Fleet's PoC and of Microsoft", () => {
    assert.deepEqual(parseDiscoverResponse(mde2Vector('fleet-poc-discover-response.xml')), {
      relatesTo: 'urn:uuid:748132ec-a575-4329-b01b-6171a9cf8478',
      authPolicy: 'OnPremise',
      enrollmentVersion: '4.0',
      enrollmentPolicyServiceUrl: 'https://windows.fleetdm.ngrok.io/EnrollmentServer/Policy.svc',
      enrollmentServiceUrl: 'https://windows.fleetdm.ngrok.io/EnrollmentServer/Enrollment.svc',
    });
    const ms = 'https://enrolltest.contoso.com/ENROLLMENTSERVER/DEVICEENROLLMENTWEBSERVICE.SVC';
    assert.deepEqual(parseDiscoverResponse(mde2Vector('ms-discover-response.xml')), {
      relatesTo: 'urn:uuid: 748132ec-a575-4329-b01b-6171a9cf8478',
      authPolicy: 'OnPremise',
      enrollmentVersion: '3.0',
      enrollmentPolicyServiceUrl: ms,
      enrollmentServiceUrl: ms,
    });
  });

  it('builds byte for byte the Discover that Windows 10 sent', () => {
    const r = parseDiscoverRequest(windowsDiscover);
    assert.equal(buildDiscoverRequest({ ...r, to: r.to! }), windowsDiscover);
  });

  it('builds a DiscoverResponse that reads back, with its envelope right', () => {
    const r = {
      relatesTo: 'urn:uuid:0b1c',
      authPolicy: 'Federated',
      enrollmentVersion: '5.0',
      enrollmentPolicyServiceUrl: 'https://mdm.example.com/EnrollmentServer/Policy.svc',
      enrollmentServiceUrl: 'https://mdm.example.com/EnrollmentServer/Enrollment.svc',
      authenticationServiceUrl: 'https://mdm.example.com/EnrollmentServer/Auth',
    } as const;
    const xml = buildDiscoverResponse(r);
    const root = assertEnvelope(xml, ACTIONS.discoverResponse, [NS.enrollment, 'DiscoverResponse']);
    assert.equal(path(root, [NS.soap, 'Header'], [NS.addressing, 'RelatesTo']).text, r.relatesTo);
    assert.deepEqual(parseDiscoverResponse(xml), r);
    const { authenticationServiceUrl: _, ...rest } = r;
    const onPremise = { ...rest, authPolicy: 'OnPremise' } as const;
    assert.deepEqual(parseDiscoverResponse(buildDiscoverResponse(onPremise)), onPremise);
    rejectsMde2(
      () => buildDiscoverResponse({ ...onPremise, authPolicy: 'Federated' }),
      'ERR_MDE2_INVALID_ARGUMENT',
    );
  });

  it('refuses a Discover without the fields the schema requires, or an unknown AuthPolicy', () => {
    rejectsMde2(
      () => parseDiscoverRequest(windowsDiscover.replace(/<OSEdition>72<\/OSEdition>/, '')),
      'ERR_MDE2_MALFORMED',
      /OSEdition/,
    );
    rejectsMde2(
      () =>
        parseDiscoverRequest(
          windowsDiscover.replace(/<AuthPolicies>.*<\/AuthPolicies>/, '<AuthPolicies/>'),
        ),
      'ERR_MDE2_MALFORMED',
      /AuthPolicy/,
    );
    const r = parseDiscoverResponse(mde2Vector('fleet-poc-discover-response.xml'));
    const xml = buildDiscoverResponse({
      ...r,
      enrollmentVersion: '4.0',
      enrollmentPolicyServiceUrl: 'x',
    });
    rejectsMde2(
      () => parseDiscoverResponse(xml.replace('>OnPremise<', '>Kerberos<')),
      'ERR_MDE2_MALFORMED',
      /AuthPolicy "Kerberos"/,
    );
  });
});

describe('MS-MDE2 enrollment policy (§3.3, MS-XCEP)', () => {
  it('reads the GetPolicies of Windows 10 and of Microsoft, with their UsernameTokens', () => {
    assert.deepEqual(parseGetPoliciesRequest(windowsGetPolicies), {
      messageId: 'urn:uuid:72048B64-0F19-448F-8C2E-B4C661860AA0',
      to: 'https://windows.fleetdm.ngrok.io/EnrollmentServer/Policy.svc',
      security: { kind: 'username', username: 'demio', password: 'demo' },
    });
    assert.deepEqual(parseGetPoliciesRequest(mde2Vector('ms-getpolicies-request.xml')).security, {
      kind: 'username',
      username: 'user@contoso.com',
      password: 'mypassword',
    });
  });

  it("reads Microsoft's GetPoliciesResponse, the hash OID resolved through oIDs", () => {
    assert.deepEqual(parseGetPoliciesResponse(mde2Vector('ms-getpolicies-response.xml')), {
      relatesTo: 'urn:uuid: 69960163-adad-4a72-82d2-bb0e5cff5598',
      policy: {
        validityPeriodSeconds: 1209600,
        renewalPeriodSeconds: 172800,
        minimalKeyLength: 2048,
        hashAlgorithmOid: '1.3.14.3.2.29',
        commonName: 'CEPUnitTest',
        enroll: true,
        autoEnroll: false,
        majorRevision: 101,
        minorRevision: 0,
      },
      oids: [
        {
          value: '1.3.14.3.2.29',
          group: 1,
          referenceId: 0,
          defaultName: 'szOID_OIWSEC_sha1RSASign',
        },
      ],
    });
  });

  it("refuses the Fleet PoC's GetPoliciesResponse: it is not well-formed XML", () => {
    rejectsMde2(
      () => parseGetPoliciesResponse(mde2Vector('fleet-poc-getpolicies-response.xml')),
      'ERR_MDE2_MALFORMED',
      /not well-formed XML: 18:47: "=" in the tag name algorithmOIDReferencexsi:nil/,
    );
  });

  it('builds byte for byte the GetPolicies that Windows 10 sent', () => {
    const r = parseGetPoliciesRequest(windowsGetPolicies);
    assert.equal(buildGetPoliciesRequest({ ...r, to: r.to! }), windowsGetPolicies);
  });

  it('builds GetPolicies with each kind of credential, and reads them back', () => {
    const base = { messageId: 'urn:uuid:1', to: 'https://mdm.example.com/Policy.svc' };
    for (const security of [
      { kind: 'username', username: 'ann@example.com', password: ' p<&>"w ' },
      { kind: 'binary', valueType: 'urn:example:token', token: 'ZXhhbXBsZQ==' },
      { kind: 'none' },
    ] as const) {
      const xml = buildGetPoliciesRequest({ ...base, security });
      const root = assertEnvelope(xml, ACTIONS.getPolicies, [NS.xcep, 'GetPolicies']);
      assertRequestAddressing(root, base.messageId, base.to);
      assert.deepEqual(parseGetPoliciesRequest(xml), { ...base, security });
    }
    const root = tree(
      buildGetPoliciesRequest({
        ...base,
        security: { kind: 'username', username: 'u', password: 'p' },
      }),
    );
    const token = path(
      root,
      [NS.soap, 'Header'],
      [NS.wsse, 'Security'],
      [NS.wsse, 'UsernameToken'],
    );
    assert.equal(attribute(token, 'Id', NS.wsu), USERNAME_TOKEN_ID);
    assert.equal(attribute(path(token, [NS.wsse, 'Password']), 'Type', NS.wsse), PASSWORD_TEXT);
    const client = path(root, [NS.soap, 'Body'], [NS.xcep, 'GetPolicies'], [NS.xcep, 'client']);
    assert.equal(attribute(path(client, [NS.xcep, 'lastUpdate']), 'nil', NS.xsi), 'true');
  });

  it('builds a GetPoliciesResponse that reads back, in the shape of Microsoft’s example', () => {
    const policy = {
      validityPeriodSeconds: 31536000,
      renewalPeriodSeconds: 2592000,
      minimalKeyLength: 3072,
      hashAlgorithmOid: '2.16.840.1.101.3.4.2.1',
      commonName: 'certpost-mdm',
      policyId: 'c0ffee',
      enroll: true,
      autoEnroll: false,
      majorRevision: 7,
      minorRevision: 2,
    };
    const xml = buildGetPoliciesResponse({ relatesTo: 'urn:uuid:2', policy });
    assertEnvelope(xml, ACTIONS.getPoliciesResponse, [NS.xcep, 'GetPoliciesResponse']);
    assert.deepEqual(parseGetPoliciesResponse(xml), {
      relatesTo: 'urn:uuid:2',
      policy,
      oids: [
        {
          value: policy.hashAlgorithmOid,
          group: 1,
          referenceId: 0,
          defaultName: 'szOID_NIST_sha256',
        },
      ],
    });
    const minimal = { validityPeriodSeconds: 60, renewalPeriodSeconds: 6, minimalKeyLength: 2048 };
    const back = parseGetPoliciesResponse(
      buildGetPoliciesResponse({ relatesTo: 'r', policy: minimal }),
    );
    assert.deepEqual(back.oids, []);
    assert.deepEqual(back.policy, {
      ...minimal,
      enroll: true,
      autoEnroll: false,
      majorRevision: 1,
      minorRevision: 0,
    });
    rejectsMde2(
      () =>
        buildGetPoliciesResponse({ relatesTo: 'r', policy: { ...minimal, minimalKeyLength: -1 } }),
      'ERR_MDE2_INVALID_ARGUMENT',
    );
  });

  it('refuses a policy that is not schema 3, or names an oID that is not listed', () => {
    const ms = mde2Vector('ms-getpolicies-response.xml');
    rejectsMde2(
      () => parseGetPoliciesResponse(ms.replace('<policySchema>3<', '<policySchema>2<')),
      'ERR_MDE2_MALFORMED',
      /policySchema is "2"/,
    );
    rejectsMde2(
      () =>
        parseGetPoliciesResponse(
          ms.replace('<hashAlgorithmOIDReference>0<', '<hashAlgorithmOIDReference>4<'),
        ),
      'ERR_MDE2_MALFORMED',
      /names no listed oID/,
    );
    rejectsMde2(
      () => parseGetPoliciesRequest(windowsGetPolicies.replace(/<client>.*<\/client>/, '')),
      'ERR_MDE2_MALFORMED',
      /client/,
    );
  });
});

describe('MS-MDE2 enrollment (§3.4, MS-WSTEP)', () => {
  it("reads Windows 10's RequestSecurityToken: its CSR, and every MAC kept", () => {
    const r = parseRequestSecurityToken(windowsRst);
    assert.equal(r.messageId, 'urn:uuid:0d5a1441-5891-453b-becf-a2e5f6ea3749');
    assert.equal(r.to, 'https://windows.fleetdm.ngrok.io/EnrollmentServer/Enrollment.svc');
    assert.deepEqual(r.security, { kind: 'username', username: 'demio', password: 'demo' });
    assert.equal(r.tokenType, DEVICE_ENROLLMENT_TOKEN);
    assert.equal(r.requestType, 'Issue');
    assert.equal(r.binarySecurityToken.valueType, 'PKCS10');
    const csr = parseCsr(r.binarySecurityToken.der);
    assert.match(
      formatName(csr.subject),
      /^CN=562A7F9A-6CD8-40B0-9E7E-0DBDD8!B5B954E81FBCB94EB79BD08BE625F4EE/,
    );
    assert.equal(r.contextAll.length, 18);
    assert.deepEqual(
      r.contextAll.filter((i) => i.name === 'MAC').map((i) => i.value),
      [
        '00-0C-29-51-60-9D',
        '1A-77-20-52-41-53',
        '1A-77-20-52-41-53',
        '00-0C-29-51-60-A7',
        '18-14-20-52-41-53',
        '00-0C-29-51-60-93',
      ],
    );
    assert.equal(r.context.MAC, '00-0C-29-51-60-9D');
    assert.equal(r.context.DeviceID, 'B5B954E81FBCB94EB79BD08BE625F4EE');
    assert.equal(
      r.context.HWDevID,
      '3B3ED6D0EA88CBFCF37D36F90F22FE61172348C0162FC3840D6703149870CE76',
    );
    assert.equal(r.context.EnrollmentType, 'Full');
    assert.equal(r.context.NotInOobe, 'false');
    assert.ok(Object.isFrozen(r.context));
  });

  it("refuses Microsoft's RequestSecurityToken for its placeholder, and reads it with a real CSR", () => {
    const ms = mde2Vector('ms-rst-request.xml');
    rejectsMde2(
      () => parseRequestSecurityToken(ms),
      'ERR_MDE2_MALFORMED',
      /BinarySecurityToken is not base64/,
    );
    const csr = Buffer.from(parseRequestSecurityToken(windowsRst).binarySecurityToken.der).toString(
      'base64',
    );
    const r = parseRequestSecurityToken(
      ms.replace('DER format PKCS#10 certificate request in Base64 encoding Insterted Here', csr),
    );
    // Credentials are kept exactly as written; the example wraps the password in whitespace.
    assert.deepEqual(r.security, {
      kind: 'username',
      username: 'user@contoso.com',
      password: 'mypassword\n            ',
    });
    assert.equal(
      r.to,
      'https://enrolltest.contoso.com:443/ENROLLMENTSERVER/DEVICEENROLLMENTWEBSERVICE.SVC',
    );
    assert.deepEqual(
      r.contextAll.filter((i) => i.name === 'IMEI').map((i) => i.value),
      ['49015420323756', '30215420323756'],
    );
    assert.deepEqual(
      { ...r.context },
      {
        OSEdition: '4',
        OSVersion: '10.0.9999.0',
        DeviceName: 'MY_WINDOWS_DEVICE',
        MAC: 'FF:FF:FF:FF:FF:FF',
        IMEI: '49015420323756',
        EnrollmentType: 'Full',
        DeviceType: 'CIMClient_Windows',
        ApplicationVersion: '10.0.9999.0',
        DeviceID: '7BA748C8-703E-4DF2-A74A-92984117346A',
        TargetedUserLoggedIn: 'True',
      },
    );
  });

  it('builds byte for byte the RequestSecurityToken that Windows 10 sent', () => {
    const r = parseRequestSecurityToken(windowsRst);
    assert.equal(buildRequestSecurityToken({ ...r, to: r.to!, context: r.contextAll }), windowsRst);
  });

  it('builds a renewal RST from a context record and reads it back', () => {
    const der = new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x07]);
    const xml = buildRequestSecurityToken({
      messageId: 'urn:uuid:3',
      to: 'https://mdm.example.com/Enrollment.svc',
      security: { kind: 'none' },
      requestType: 'Renew',
      binarySecurityToken: { valueType: 'PKCS7', der },
      context: { DeviceID: 'D1', EnrollmentType: 'Device' },
    });
    const root = assertEnvelope(xml, ACTIONS.requestSecurityToken, [
      NS.wst,
      'RequestSecurityToken',
    ]);
    assertRequestAddressing(root, 'urn:uuid:3', 'https://mdm.example.com/Enrollment.svc');
    const bst = path(
      root,
      [NS.soap, 'Body'],
      [NS.wst, 'RequestSecurityToken'],
      [NS.wsse, 'BinarySecurityToken'],
    );
    assert.equal(attribute(bst, 'ValueType'), `${NS.wstep}#PKCS7`);
    assert.equal(attribute(bst, 'EncodingType'), BASE64_ENCODING);
    const r = parseRequestSecurityToken(xml);
    assert.equal(r.requestType, 'Renew');
    assert.deepEqual(r.binarySecurityToken, { valueType: 'PKCS7', der });
    assert.deepEqual(r.contextAll, [
      { name: 'DeviceID', value: 'D1' },
      { name: 'EnrollmentType', value: 'Device' },
    ]);
    assert.deepEqual(r.security, { kind: 'none' });
  });

  it('keeps a ContextItem named __proto__ as data, without touching any prototype', () => {
    const r = parseRequestSecurityToken(
      windowsRst.replace('Name="Locale"', 'Name="__proto__"').replace('Name="Locale"', 'Name="x"'),
    );
    assert.equal(r.context['__proto__'], 'en-US');
    assert.equal(Object.getPrototypeOf(r.context), null);
    assert.equal(({} as Record<string, unknown>)['en-US'], undefined);
  });

  it('refuses unknown token, request and value types, bad base64 and incomplete items', () => {
    const cases: [string, string | RegExp, string, RegExp][] = [
      [
        'token type',
        /ConfigurationManager\/Enrollment\/DeviceEnrollmentToken/,
        'urn:other',
        /TokenType/,
      ],
      ['request type', '200512/Issue', '200512/Validate', /RequestType/],
      ['value type', 'enrollment#PKCS10', 'enrollment#PEM', /ValueType/],
      [
        'encoding',
        'secext-1.0.xsd#base64binary">MII',
        'secext-1.0.xsd#hexbinary">MII',
        /EncodingType/,
      ],
      ['base64', '>MIICzjCC', '>MIIC*jCC', /not base64/],
      [
        'context item',
        '<ac:ContextItem Name="Locale"><ac:Value>en-US</ac:Value>',
        '<ac:ContextItem Name="Locale">',
        /ContextItem/,
      ],
    ];
    for (const [what, from, to, detail] of cases) {
      const bad = windowsRst.replace(from, to);
      assert.notEqual(bad, windowsRst, what);
      rejectsMde2(() => parseRequestSecurityToken(bad), 'ERR_MDE2_MALFORMED', detail);
    }
  });

  it("reads the Fleet PoC's response: the provisioning document Windows installed", () => {
    const r = parseRequestSecurityTokenResponse(mde2Vector('fleet-poc-rstr-response.xml'));
    assert.equal(r.relatesTo, 'urn:uuid:0d5a1441-5891-453b-becf-a2e5f6ea3749');
    assert.equal(r.requestId, '0');
    assert.deepEqual(r.timestamp, {
      created: '2018-11-30T00:32:59.420Z',
      expires: '2018-12-30T00:37:59.420Z',
    });
    assert.equal(r.provisioningDoc, mde2Vector('fleet-poc-provisioning-doc.xml').trimEnd());
  });

  it("refuses Microsoft's RSTR example: its envelope is SOAP 1.1", () => {
    rejectsMde2(
      () => parseRequestSecurityTokenResponse(mde2Vector('ms-rstr-response.xml')),
      'ERR_MDE2_MALFORMED',
      /SOAP 1\.1/,
    );
  });

  it('builds an RSTR: base64 UTF-8 document, token types, and a timestamp from now', () => {
    const doc = '<wap-provisioningdoc version="1.1"><!-- é --></wap-provisioningdoc>';
    const now = new Date('2026-11-24T10:00:00.000Z');
    const xml = buildRequestSecurityTokenResponse({
      relatesTo: 'urn:uuid:4',
      provisioningDoc: doc,
      requestId: '17',
      now,
    });
    const root = assertEnvelope(xml, ACTIONS.requestSecurityTokenResponse, [
      NS.wst,
      'RequestSecurityTokenResponseCollection',
    ]);
    const security = path(root, [NS.soap, 'Header'], [NS.wsse, 'Security']);
    assert.equal(attribute(security, 'mustUnderstand', NS.soap), '1');
    const stamp = path(security, [NS.wsu, 'Timestamp']);
    assert.equal(path(stamp, [NS.wsu, 'Created']).text, '2026-11-24T10:00:00.000Z');
    assert.equal(path(stamp, [NS.wsu, 'Expires']).text, '2026-11-24T10:05:00.000Z');
    const rstr = path(
      root,
      [NS.soap, 'Body'],
      [NS.wst, 'RequestSecurityTokenResponseCollection'],
      [NS.wst, 'RequestSecurityTokenResponse'],
    );
    assert.equal(path(rstr, [NS.wst, 'TokenType']).text, DEVICE_ENROLLMENT_TOKEN);
    assert.ok(child(rstr, NS.wstep, 'DispositionMessage'));
    assert.equal(path(rstr, [NS.wstep, 'RequestID']).text, '17');
    const bst = path(rstr, [NS.wst, 'RequestedSecurityToken'], [NS.wsse, 'BinarySecurityToken']);
    assert.equal(attribute(bst, 'ValueType'), PROVISION_DOC_VALUE_TYPE);
    assert.equal(attribute(bst, 'EncodingType'), BASE64_ENCODING);
    assert.equal(Buffer.from(bst.text, 'base64').toString('utf8'), doc);
    assert.deepEqual(parseRequestSecurityTokenResponse(xml), {
      relatesTo: 'urn:uuid:4',
      provisioningDoc: doc,
      requestId: '17',
      timestamp: { created: '2026-11-24T10:00:00.000Z', expires: '2026-11-24T10:05:00.000Z' },
    });
    const later = buildRequestSecurityTokenResponse({
      relatesTo: 'r',
      provisioningDoc: doc,
      requestId: '1',
      now,
      validitySeconds: 60,
    });
    assert.equal(
      parseRequestSecurityTokenResponse(later).timestamp?.expires,
      '2026-11-24T10:01:00.000Z',
    );
  });

  it('refuses an RSTR whose token is not a UTF-8 provisioning document', () => {
    const xml = buildRequestSecurityTokenResponse({
      relatesTo: 'r',
      provisioningDoc: 'x',
      requestId: '1',
      now: new Date(0),
    });
    const token = Buffer.from('x').toString('base64');
    rejectsMde2(
      () =>
        parseRequestSecurityTokenResponse(
          xml.replace(`>${token}<`, `>${Buffer.from([0xc3, 0x28]).toString('base64')}<`),
        ),
      'ERR_MDE2_MALFORMED',
      /not UTF-8/,
    );
    rejectsMde2(
      () => parseRequestSecurityTokenResponse(xml.replace('DeviceEnrollmentProvisionDoc', 'Other')),
      'ERR_MDE2_MALFORMED',
      /not a provisioning document/,
    );
  });
});

describe('MS-MDE2 envelopes and hostile input', () => {
  it('refuses DOCTYPE, oversize and overdeep messages with their own codes', () => {
    rejectsMde2(
      () =>
        parseDiscoverRequest(
          `<!DOCTYPE s [<!ENTITY x SYSTEM "file:///etc/passwd">]>${windowsDiscover}`,
        ),
      'ERR_MDE2_FORBIDDEN_DOCTYPE',
    );
    rejectsMde2(
      () => parseDiscoverRequest(windowsDiscover, { maxBytes: 1000, maxDepth: 32 }),
      'ERR_MDE2_LIMIT',
    );
    rejectsMde2(
      () => parseDiscoverRequest(windowsDiscover, { maxBytes: 4096, maxDepth: 4 }),
      'ERR_MDE2_LIMIT',
    );
    rejectsMde2(
      () => parseDiscoverRequest(`<a>${'<b>'.repeat(100)}${'</b>'.repeat(100)}</a>`),
      'ERR_MDE2_LIMIT',
    );
  });

  it('refuses a wrong Action, a missing one, and each request sent to the wrong operation', () => {
    rejectsMde2(
      () =>
        parseDiscoverRequest(
          windowsDiscover.replace('/IDiscoveryService/Discover<', '/IDiscoveryService/Other<'),
        ),
      'ERR_MDE2_MALFORMED',
      /Action is .*Other/,
    );
    rejectsMde2(
      () => parseDiscoverRequest(windowsDiscover.replace(/<a:Action[^>]*>[^<]*<\/a:Action>/, '')),
      'ERR_MDE2_MALFORMED',
      /no WS-Addressing Action/,
    );
    rejectsMde2(() => parseGetPoliciesRequest(windowsDiscover), 'ERR_MDE2_MALFORMED', /Action/);
    rejectsMde2(
      () => parseRequestSecurityToken(windowsGetPolicies),
      'ERR_MDE2_MALFORMED',
      /Action/,
    );
    rejectsMde2(() => parseDiscoverRequest(windowsRst), 'ERR_MDE2_MALFORMED', /Action/);
  });

  it('refuses a missing MessageID, body or body element, and a body element of the wrong namespace', () => {
    rejectsMde2(
      () => parseDiscoverRequest(windowsDiscover.replace(/<a:MessageID>[^<]*<\/a:MessageID>/, '')),
      'ERR_MDE2_MALFORMED',
      /MessageID/,
    );
    rejectsMde2(
      () => parseDiscoverRequest(windowsDiscover.replace(/<s:Body>.*<\/s:Body>/, '')),
      'ERR_MDE2_MALFORMED',
      /no Body/,
    );
    rejectsMde2(
      () =>
        parseDiscoverRequest(windowsDiscover.replace(/<s:Body>.*<\/s:Body>/, '<s:Body></s:Body>')),
      'ERR_MDE2_MALFORMED',
      /holds 0 elements/,
    );
    rejectsMde2(
      () =>
        parseDiscoverRequest(
          windowsDiscover.replace(
            '<Discover xmlns="http://schemas.microsoft.com/windows/management/2012/01/enrollment">',
            '<Discover xmlns="urn:elsewhere">',
          ),
        ),
      'ERR_MDE2_MALFORMED',
      /urn:elsewhere/,
    );
  });

  it('refuses what is not a SOAP 1.2 envelope, not well-formed, or binds no prefix', () => {
    rejectsMde2(
      () => parseDiscoverRequest('<Envelope/>'),
      'ERR_MDE2_MALFORMED',
      /not a SOAP 1\.2 Envelope/,
    );
    rejectsMde2(
      () => parseDiscoverRequest(mde2Vector('ms-mde2-fault.xml')),
      'ERR_MDE2_MALFORMED',
      /envelope" is not a SOAP 1\.2 Envelope/,
    );
    rejectsMde2(
      () => parseDiscoverRequest(windowsDiscover.slice(0, -20)),
      'ERR_MDE2_MALFORMED',
      /well-formed/,
    );
    rejectsMde2(
      () =>
        parseDiscoverRequest(
          windowsDiscover.replace(' xmlns:a="http://www.w3.org/2005/08/addressing"', ''),
        ),
      'ERR_MDE2_MALFORMED',
      /unbound namespace prefix "a"/,
    );
    rejectsMde2(
      () => parseDiscoverRequest(new Uint8Array([0xff, 0xfe, 0x00])),
      'ERR_MDE2_MALFORMED',
    );
  });

  it('refuses a header it must understand and does not (SOAP 1.2 §5.2.3)', () => {
    rejectsMde2(
      () =>
        parseDiscoverRequest(
          windowsDiscover.replace(
            '</s:Header>',
            '<x:Pay xmlns:x="urn:x" s:mustUnderstand="1"/></s:Header>',
          ),
        ),
      'ERR_MDE2_MALFORMED',
      /must be understood/,
    );
    assert.doesNotThrow(() =>
      parseDiscoverRequest(
        windowsDiscover.replace('</s:Header>', '<x:Note xmlns:x="urn:x"/></s:Header>'),
      ),
    );
  });

  it('answers an unreadable WS-Security header with ERR_MDE2_INVALID_SECURITY', () => {
    const cases: [string | RegExp, string, RegExp][] = [
      ['#PasswordText', '#PasswordDigest', /PasswordDigest/],
      ['<wsse:Username>demio</wsse:Username>', '', /Username and Password/],
      [/<wsse:UsernameToken.*<\/wsse:UsernameToken>/, '', /no token/],
    ];
    for (const [from, to, detail] of cases) {
      const bad = windowsGetPolicies.replace(from, to);
      assert.notEqual(bad, windowsGetPolicies);
      rejectsMde2(() => parseGetPoliciesRequest(bad), 'ERR_MDE2_INVALID_SECURITY', detail);
    }
    const binary = buildGetPoliciesRequest({
      messageId: 'm',
      to: 't',
      security: { kind: 'binary', valueType: 'urn:v', token: 'AAAA' },
    });
    rejectsMde2(
      () => parseGetPoliciesRequest(binary.replace('#base64binary', '#hex')),
      'ERR_MDE2_INVALID_SECURITY',
      /EncodingType/,
    );
    rejectsMde2(
      () => parseGetPoliciesRequest(binary.replace('>AAAA<', '><')),
      'ERR_MDE2_INVALID_SECURITY',
      /empty/,
    );
  });

  it('refuses a response without RelatesTo or with the wrong Action', () => {
    const xml = mde2Vector('fleet-poc-discover-response.xml');
    rejectsMde2(
      () => parseDiscoverResponse(xml.replace(/<a:RelatesTo>[^<]*<\/a:RelatesTo>/, '')),
      'ERR_MDE2_MALFORMED',
      /RelatesTo/,
    );
    rejectsMde2(() => parseGetPoliciesResponse(xml), 'ERR_MDE2_MALFORMED', /Action/);
  });
});

describe('MS-MDE2 faults (§2.2.10)', () => {
  it('reads a real SOAP 1.2 fault (MS-DVRE §4.1.3), its subcode outside the MS-MDE2 table', () => {
    assert.deepEqual(parseSoapFault(mde2Vector('ms-dvre-fault.xml')), {
      code: 's:Receiver',
      subcodeValue: 's:DeviceCapReached',
      reason: 'WindowsEnrollmentServiceError',
      action: 'DeviceCapReached',
      relatesTo: 'urn:uuid:0d5a1441-5891-453b-becf-a2e5f6ea3749',
    });
  });

  it('turns a fault where a response was expected into ERR_MDE2_FAULT carrying the fault', () => {
    const xml = buildSoapFault({
      relatesTo: 'urn:uuid:5',
      subcode: 's:authorization',
      reason: 'This User is not authorized to enroll',
    });
    for (const parse of [
      parseDiscoverResponse,
      parseGetPoliciesResponse,
      parseRequestSecurityTokenResponse,
    ]) {
      assert.throws(
        () => parse(xml),
        (e) =>
          e instanceof Mde2Error &&
          e.code === 'ERR_MDE2_FAULT' &&
          e.fault?.subcode === 's:authorization' &&
          e.fault.hresult === 0x80180003 &&
          e.fault.reason === 'This User is not authorized to enroll',
      );
    }
  });

  it('builds every subcode with its table QName, bound to its namespace, and reads it back', () => {
    for (const [subcode, row] of Object.entries(SOAP_FAULT_SUBCODES) as [
      SoapFaultSubcode,
      (typeof SOAP_FAULT_SUBCODES)[SoapFaultSubcode],
    ][]) {
      const xml = buildSoapFault({
        relatesTo: 'urn:uuid:6',
        subcode,
        reason: `no <${subcode}> & more`,
      });
      const root = assertEnvelope(xml, ACTIONS.fault, [NS.soap, 'Fault']);
      const code = path(root, [NS.soap, 'Body'], [NS.soap, 'Fault'], [NS.soap, 'Code']);
      assert.deepEqual(resolveQName(path(code, [NS.soap, 'Value']), row.code), {
        ns: NS.soap,
        name: row.code.slice(2),
      });
      const value = path(code, [NS.soap, 'Subcode'], [NS.soap, 'Value']);
      assert.equal(value.text, row.value);
      assert.deepEqual(resolveQName(value, value.text), { ns: row.ns, name: row.value.slice(2) });
      const text = path(
        root,
        [NS.soap, 'Body'],
        [NS.soap, 'Fault'],
        [NS.soap, 'Reason'],
        [NS.soap, 'Text'],
      );
      assert.equal(attribute(text, 'lang', 'http://www.w3.org/XML/1998/namespace'), 'en-US');
      assert.deepEqual(parseSoapFault(xml), {
        code: row.code,
        subcode,
        hresult: row.hresult,
        subcodeValue: row.value,
        reason: `no <${subcode}> & more`,
        action: ACTIONS.fault,
        relatesTo: 'urn:uuid:6',
      });
    }
    const custom = buildSoapFault({
      action: ACTIONS.requestSecurityTokenResponse,
      subcode: 's:messageformat',
      reason: 'r',
    });
    assert.equal(parseSoapFault(custom)?.action, ACTIONS.requestSecurityTokenResponse);
    assert.equal(parseSoapFault(custom)?.relatesTo, undefined);
  });

  it('recognises a subcode in any case or prefix, as Fleet writes them', () => {
    const xml = buildSoapFault({ subcode: 's:authentication', reason: 'r' }).replace(
      's:Authentication',
      's:authentication',
    );
    assert.equal(parseSoapFault(xml)?.subcode, 's:authentication');
  });

  it('says undefined for a message that is not a fault, and still refuses what is not SOAP', () => {
    assert.equal(parseSoapFault(mde2Vector('fleet-poc-discover-response.xml')), undefined);
    assert.equal(parseSoapFault(windowsRst), undefined);
    rejectsMde2(() => parseSoapFault('<html/>'), 'ERR_MDE2_MALFORMED');
  });

  it('maps every error code to a message and the fault a server answers it with', () => {
    const hresults = Object.values(SOAP_FAULT_SUBCODES).map((r) => r.hresult);
    assert.deepEqual(
      hresults,
      [0x80180001, 0x80180002, 0x80180003, 0x80180004, 0x80180005, 0x80180006, 0x80180007],
    );
    for (const [code, row] of Object.entries(MDE2_ERRORS)) {
      const e = new Mde2Error(code as Mde2Error['code'], 'detail');
      assert.equal(e.message, `${row.message}: detail`);
      if (row.subcode !== null) assert.ok(row.subcode in SOAP_FAULT_SUBCODES, code);
    }
    assert.equal(MDE2_ERRORS.ERR_MDE2_INVALID_SECURITY.subcode, 'a:invalidsecurity');
  });
});
