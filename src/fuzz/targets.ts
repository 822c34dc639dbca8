/**
 * The fuzz targets: every parser that takes bytes from outside (design.md §2 pki, scep,
 * omadm). Each runs the entry points a hostile peer reaches and, where the code states a
 * contract beyond "typed error or value" (round trips, "never throws"), checks it too; a
 * broken contract throws a {@link ContractViolation}, which no target expects.
 * Targets over whole exchanges (an MDM session step, a device handling a server message, a
 * CertRep read by the SCEP client) are in session-targets.ts.
 */
import { EmlError, readCertificateAttachments } from '../mail/eml.ts';
import { isDeepStrictEqual } from 'node:util';
import { createScepService } from '../scep/service.ts';
import type { EnrollmentService } from '../ca/enrollment.ts';
import {
  Mde2Error,
  parseDiscoverRequest,
  parseDiscoverResponse,
  parseGetPoliciesRequest,
  parseGetPoliciesResponse,
  parseRequestSecurityToken,
  parseRequestSecurityTokenResponse,
  parseSoapFault,
} from '../omadm/mde2.ts';
import { parseProvisioningDoc } from '../omadm/provisioning.ts';
import { buildSyncML, parseSyncML, SyncMLError } from '../omadm/syncml.ts';
import { differential, repositoryXml, XML_CASES } from '../omadm/xml-testing.ts';
import { checkSignature, checkSignedStructure } from '../pki/chain.ts';
import { parseSignedData } from '../pki/cms.ts';
import { inspectCsr, parseCsr } from '../pki/csr.ts';
import * as der from '../pki/der.ts';
import { Tag, type Asn1 } from '../pki/der.ts';
import { PkiError } from '../pki/errors.ts';
import { inspectContents } from '../pki/inspect.ts';
import { ALG, CMS, EKU_NAMES, EXT, PKCS9, PKIX, SIGNATURE_ALGS } from '../pki/oids.ts';
import { decodePem, encodePem } from '../pki/pem.ts';
import { parsePkcs12 } from '../pki/pkcs12.ts';
import { PBE_OIDS, DIGEST_OIDS } from '../pki/pkcs12-kdf.ts';
import { parsePkcs7Certificates, parsePkcs7Crls } from '../pki/pkcs7.ts';
import { readPki } from '../pki/read.ts';
import { inspectCertificate, parseCertificate } from '../pki/x509.ts';
import { ScepError } from '../scep/errors.ts';
import { decodeGetMessage } from '../scep/get-message.ts';
import { openRequest, parsePkiMessage } from '../scep/message.ts';
import {
  certificates,
  emlFiles,
  pemBundle,
  pkcs12Seeds,
  pkcs7Bundle,
  pkcsReq,
  scepCsr,
  seedFile,
  syncmlMessages,
  testCa,
  windowsCsr,
  xmlFiles,
} from './seeds.ts';
import { ContractViolation, FUZZ_MAX_ITERATIONS, type FuzzTarget } from './target.ts';
import { SESSION_TARGETS } from './session-targets.ts';

const isPki = (e: unknown) => e instanceof PkiError;
const isMde2Error = (e: unknown) => e instanceof Mde2Error;
const isPkiOrScep = (e: unknown) => e instanceof PkiError || e instanceof ScepError;
const latin1 = (b: Uint8Array) =>
  Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
const utf8 = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));

/** Calls `f`, which its documentation says never throws. */
function never<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new ContractViolation(`${what} threw: ${(e as Error).message}`, { cause: e });
  }
}

/** Decodes every node of a DER tree with the reader its tag calls for. */
function walk(n: Asn1): void {
  if (n.constructed) {
    for (const c of der.children(n)) walk(c);
    if (n.tag === (Tag.OCTET_STRING | 0x20)) der.octets(n);
    return;
  }
  switch (n.tag) {
    case Tag.INTEGER:
      der.integer(n);
      return;
    case Tag.OID:
      der.oid(n);
      return;
    case Tag.BOOLEAN:
      der.boolean(n);
      return;
    case Tag.BIT_STRING:
      der.bitString(n);
      return;
    case Tag.UTC_TIME:
    case Tag.GENERALIZED_TIME:
      der.time(n);
      return;
    case Tag.OCTET_STRING:
      der.octets(n);
      return;
    default:
      if ((n.tag & 0xc0) === 0 && n.tag !== Tag.NULL) der.string(n);
  }
}

const ASN1_WORDS = [
  '\x30\x80',
  '\x00\x00',
  '\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x02',
  '\x02\x04\x7f\xff\xff\xff',
];

/** Encoded OBJECT IDENTIFIER contents for every OID the pki tables name (for ASN.1 mutations). */
export function oidDictionary(): Uint8Array[] {
  const oids = new Set<string>([
    ...Object.values(ALG),
    ...Object.values(CMS),
    ...Object.values(EXT),
    ...Object.values(PKCS9),
    ...Object.values(PKIX),
    ...Object.values(PBE_OIDS),
    ...Object.keys(DIGEST_OIDS),
    ...Object.keys(SIGNATURE_ALGS),
    ...Object.keys(EKU_NAMES),
    '2.16.840.1.113733.1.9.2',
    '2.16.840.1.113733.1.9.3',
    '2.16.840.1.113733.1.9.5',
    '2.16.840.1.113733.1.9.6',
    '2.16.840.1.113733.1.9.7',
  ]);
  return [...oids].toSorted().map((o) => der.value(der.decode(der.enc.oid(o))));
}

const pkiRegressions = 'src/pki/testdata/fuzz';

const derTarget: FuzzTarget = {
  name: 'der',
  description: 'pki/der.ts: decode, every child, every primitive reader',
  seeds: async () => [...certificates(), pkcs7Bundle(), await scepCsr(), ...pkcs12Seeds()],
  run(input) {
    const node = der.decode(input, true);
    walk(node);
    if (node.end === input.length && der.raw(node).length !== input.length)
      throw new ContractViolation('raw() of the whole value is not the input');
  },
  expected: isPki,
  dictionary: ASN1_WORDS,
  regressions: pkiRegressions,
};

const pemTarget: FuzzTarget = {
  name: 'pem',
  description: 'pki/pem.ts: decodePem, and encodePem of each block reads back the same',
  seeds: async () => [pemBundle(), seedFile('encrypted-key.pem')],
  run(input) {
    for (const block of decodePem(input)) {
      const again = decodePem(encodePem(block.label, block.der));
      if (again.length !== 1 || !der.bytesEqual(again[0]!.der, block.der))
        throw new ContractViolation(`PEM block ${block.label} does not round-trip`);
    }
  },
  expected: isPki,
  dictionary: [
    '-----BEGIN CERTIFICATE-----\n',
    '-----END CERTIFICATE-----\n',
    'Proc-Type: 4,ENCRYPTED\n',
    '\r\n',
    '=',
  ],
  regressions: pkiRegressions,
};

const x509Target: FuzzTarget = {
  name: 'x509',
  description: 'pki/x509.ts: parseCertificate, inspectCertificate, checkSignature (never throws)',
  seeds: async () => certificates(),
  run(input) {
    const cert = parseCertificate(input);
    inspectCertificate(cert);
    never('checkSignature', () => checkSignature(cert, cert.spki));
  },
  expected: isPki,
  dictionary: ASN1_WORDS,
  regressions: pkiRegressions,
};

const csrTarget: FuzzTarget = {
  name: 'csr',
  description: 'pki/csr.ts: parseCsr, inspectCsr, the self-signature check (never throws)',
  seeds: async () => [await scepCsr(), windowsCsr()],
  run(input) {
    const csr = parseCsr(input);
    inspectCsr(csr);
    never('checkSignedStructure', () => checkSignedStructure(csr, csr.spki));
  },
  expected: isPki,
  dictionary: ASN1_WORDS,
  regressions: pkiRegressions,
};

const pkcs7Target: FuzzTarget = {
  name: 'pkcs7',
  description: 'pki/pkcs7.ts and cms.ts: certificates and CRLs of a bundle, SignedData',
  seeds: async () => [pkcs7Bundle(), pkcsReq()],
  run(input) {
    for (const c of parsePkcs7Certificates(input)) inspectCertificate(c);
    parsePkcs7Crls(input);
    parseSignedData(input);
  },
  expected: isPki,
  dictionary: ASN1_WORDS,
  regressions: pkiRegressions,
};

const pkcs12Target: FuzzTarget = {
  name: 'pkcs12',
  description: "pki/pkcs12.ts: parsePkcs12 with the seeds' password",
  seeds: async () => pkcs12Seeds(),
  run: (input) => parsePkcs12(input, 'secret', { maxIterations: FUZZ_MAX_ITERATIONS }),
  expected: isPki,
  dictionary: ASN1_WORDS,
  regressions: pkiRegressions,
};

let anchors: ReturnType<typeof testCa>['certificate'][] | undefined;
const readTarget: FuzzTarget = {
  name: 'read',
  description: 'pki/read.ts: sniff and read any format (keys included), then inspect with trust',
  seeds: async () => [
    ...certificates(),
    pemBundle(),
    pkcs7Bundle(),
    await scepCsr(),
    ...pkcs12Seeds(),
    seedFile('encrypted-key.pem'),
    utf8(Buffer.from(certificates()[0]!).toString('base64')),
  ],
  async run(input) {
    anchors ??= [testCa().certificate];
    const contents = await readPki(input, {
      password: 'secret',
      filename: 'input.p12',
      maxIterations: FUZZ_MAX_ITERATIONS,
    });
    inspectContents(contents, { trusted: anchors, at: new Date('2026-01-01T00:00:00Z') });
  },
  expected: isPki,
  dictionary: [
    ...ASN1_WORDS,
    '-----BEGIN PRIVATE KEY-----\n',
    '-----END PRIVATE KEY-----\n',
    '-----BEGIN PKCS7-----\n',
  ],
  regressions: pkiRegressions,
};

let ca: ReturnType<typeof testCa> | undefined;
const scepMessageTarget: FuzzTarget = {
  name: 'scep-message',
  description: 'scep/message.ts: parsePkiMessage, then openRequest with the test CA',
  seeds: async () => [pkcsReq()],
  async run(input) {
    ca ??= testCa();
    await openRequest(parsePkiMessage(input), ca);
  },
  expected: isPkiOrScep,
  dictionary: ASN1_WORDS,
  regressions: 'src/scep/testdata/fuzz',
};

/**
 * The enrollment backend of the SCEP service targets: refuses, or says pending, without a
 * store. Issuance policy is the CA's (tested in ca/); the service's parsing and replies are what
 * hostile bytes reach here.
 */
const enrollment: Pick<EnrollmentService, 'enroll' | 'poll' | 'findCertificate' | 'currentCrl'> = {
  enroll: async () => ({ status: 'refused', reason: 'challenge-invalid', message: 'fuzz' }),
  poll: async () => ({ status: 'pending', requestId: 'fuzz' }),
  findCertificate: async () => undefined,
  currentCrl: async () => new Uint8Array(0),
};
let service: ReturnType<typeof createScepService> | undefined;
const scepService = () => {
  ca ??= testCa();
  service ??= createScepService({
    responder: { certificate: ca.certificate, key: ca.key },
    chain: [ca.certificate],
    enrollment,
  });
  return service;
};

const scepPostTarget: FuzzTarget = {
  name: 'scep-post',
  description: 'scep/service.ts: pkiOperation on a POST body',
  seeds: async () => [pkcsReq()],
  async run(input) {
    const r = await scepService().pkiOperation(input, { peer: '127.0.0.1' });
    if (r.body.length === 0) throw new ContractViolation('an empty SCEP reply');
  },
  expected: isPki,
  maxLen: 16 * 1024,
  bigLen: 256 * 1024,
  dictionary: ASN1_WORDS,
  regressions: 'src/scep/testdata/fuzz',
};

const scepGetTarget: FuzzTarget = {
  name: 'scep-get',
  description: 'scep/get-message.ts then service.ts: a GET PKIOperation query string',
  seeds: async () => {
    const b64 = Buffer.from(pkcsReq()).toString('base64');
    return [
      `operation=PKIOperation&message=${encodeURIComponent(b64)}`,
      `operation=PKIOperation&message=${b64}`,
      `message=${b64.replace(/=+$/, '').replace(/(.{64})/g, '$1%0A')}&operation=PKIOperation`,
      `operation=PKIOperation&message=${b64.replace(/\+/g, '-').replace(/\//g, '_')}`,
    ].map(utf8);
  },
  async run(input) {
    const body = decodeGetMessage(latin1(input));
    if (body === undefined || body.length === 0) return;
    await scepService().pkiOperation(body, { peer: '127.0.0.1' });
  },
  expected: isPki,
  maxLen: 16 * 1024,
  bigLen: 64 * 1024,
  dictionary: ['%0A', '%2B', '%2F', '%3D', '&', 'message=', '%', '+', ' '],
  regressions: 'src/scep/testdata/fuzz',
};

const syncmlTarget: FuzzTarget = {
  name: 'syncml',
  description: 'omadm/syncml.ts: parseSyncML, and what buildSyncML writes of it parses the same',
  seeds: async () => syncmlMessages(),
  run(input) {
    const message = parseSyncML(input);
    if (JSON.stringify(message).includes('"Unknown"')) return; // not buildable, by contract
    const again = parseSyncML(buildSyncML(message));
    if (!isDeepStrictEqual(again, message))
      throw new ContractViolation('buildSyncML of a parsed message parses differently');
  },
  expected: (e) => e instanceof SyncMLError,
  bigLen: 1024 * 1024,
  dictionary: [
    '<Atomic>',
    '</Atomic>',
    '<Sequence>',
    '<Status>',
    '<Item>',
    '<Data>',
    '</Data>',
    '<Meta>',
    '<Format xmlns="syncml:metinf">xml</Format>',
    '<![CDATA[',
    ']]>',
    '<!--',
    '-->',
    '&amp;',
    '&#x10FFFF;',
    '&lt;',
    '<?xml version="1.0"?>',
    '<!DOCTYPE',
    'xmlns:a="x"',
    '<Final/>',
  ],
  regressions: 'src/omadm/testdata/fuzz',
};

const mde2Dictionary = [
  '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope">',
  '<s:Header>',
  '<s:Body>',
  'xsi:nil="true"',
  'mustUnderstand="1"',
  '<![CDATA[',
  ']]>',
  '<!--',
  '-->',
  '&amp;',
  '&#65;',
  'xmlns=""',
  'xmlns:a="urn:x"',
];

/** Each parser on the input; only MS-MDE2's own error may escape. */
function eachParser(input: Uint8Array, parsers: readonly ((x: Uint8Array) => unknown)[]): void {
  for (const p of parsers) {
    try {
      p(input);
    } catch (e) {
      if (!isMde2Error(e)) throw e;
    }
  }
}

const mde2ServerTarget: FuzzTarget = {
  name: 'mde2-server',
  description:
    'omadm/mde2.ts: Discover, GetPolicies and RequestSecurityToken requests (server side)',
  seeds: async () => xmlFiles('omadm/testdata/mde2'),
  run: (input) =>
    eachParser(input, [parseDiscoverRequest, parseGetPoliciesRequest, parseRequestSecurityToken]),
  expected: isMde2Error,
  bigLen: 256 * 1024,
  dictionary: mde2Dictionary,
  regressions: 'src/omadm/testdata/fuzz',
};

const mde2ClientTarget: FuzzTarget = {
  name: 'mde2-client',
  description:
    'omadm/mde2.ts and provisioning.ts: responses, faults and the provisioning document (device side)',
  seeds: async () => xmlFiles('omadm/testdata/mde2'),
  run: (input) =>
    eachParser(input, [
      parseDiscoverResponse,
      parseGetPoliciesResponse,
      parseRequestSecurityTokenResponse,
      parseSoapFault,
      parseProvisioningDoc,
    ]),
  expected: isMde2Error,
  bigLen: 256 * 1024,
  dictionary: [...mde2Dictionary, '<characteristic type="', '<parm name="', 'value="'],
  regressions: 'src/omadm/testdata/fuzz',
};

/** Text as its UTF-8 bytes written as latin1, the way the engine inserts dictionary tokens. */
const utf8Token = (s: string) => Buffer.from(s, 'utf8').toString('latin1');

const xmlTarget: FuzzTarget = {
  name: 'xml',
  description:
    'omadm/xml-read.ts against saxes, the reader it replaced: the same tree, or a refusal at the same line and column',
  seeds: async () => [
    ...repositoryXml().map((d) => utf8(d.xml)),
    ...syncmlMessages(),
    ...XML_CASES.map(utf8),
  ],
  run(input) {
    // Decoded as guardXml decodes bytes: invalid UTF-8 becomes U+FFFD.
    const disagreement = differential(new TextDecoder().decode(input));
    if (disagreement) throw new ContractViolation(`the XML readers disagree: ${disagreement}`);
  },
  expected: () => false,
  dictionary: [
    '<![CDATA[',
    ']]>',
    '<!--',
    '-->',
    '<?pi x?>',
    '<?xml version="1.0" encoding="UTF-8" standalone="no"?>',
    '&amp;',
    '&lt;',
    '&#x10FFFF;',
    '&#0;',
    '&#65;',
    'xmlns=""',
    'xmlns:a="urn:x"',
    'xmlns:xml="http://www.w3.org/XML/1998/namespace"',
    'xml:lang="en"',
    'a:b',
    '</',
    '/>',
    '="',
    "'",
    '\r\n',
    '\r',
    '\t',
    ' ',
    utf8Token('\u00e9\u0300\u00b7\u203f'),
    utf8Token('\u{10000}'),
    utf8Token('\u{F0000}'),
    utf8Token('\ufffe'),
    utf8Token('\ufeff'),
    utf8Token('\u0085\u2028'),
  ],
  regressions: 'src/omadm/testdata/fuzz',
};

const emlTarget: FuzzTarget = {
  name: 'eml',
  description:
    'mail/eml.ts: the certificate attachments of a message (mailparser, then each attachment sniffed)',
  seeds: async () => emlFiles(),
  run: (input) => readCertificateAttachments(input, { maxMessageBytes: 1 << 20 }),
  expected: (e) => e instanceof EmlError,
  bigLen: 1 << 20,
  dictionary: [
    'Content-Type: ',
    'multipart/mixed; boundary=',
    'Content-Transfer-Encoding: base64',
    'Content-Disposition: attachment; filename=',
    'application/pkix-cert',
    'application/x-pkcs7-certificates',
    'application/x-pkcs12',
    '=?UTF-8?B?',
    '\r\n--',
  ],
  regressions: 'src/mail/testdata/fuzz',
};

export const TARGETS: Readonly<Record<string, FuzzTarget>> = Object.fromEntries(
  [
    derTarget,
    pemTarget,
    x509Target,
    csrTarget,
    pkcs7Target,
    pkcs12Target,
    readTarget,
    scepMessageTarget,
    scepPostTarget,
    scepGetTarget,
    syncmlTarget,
    mde2ServerTarget,
    mde2ClientTarget,
    xmlTarget,
    emlTarget,
    ...SESSION_TARGETS,
  ].map((t) => [t.name, t]),
);
