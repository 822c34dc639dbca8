/**
 * Property tests (fast-check) of the formats certpost writes and reads back: what the writer
 * produces for any input of its domain, the reader returns unchanged. Certificates, CSRs and
 * names are built with the CA's encoders (ca/) and read with pki/; PKCS#7 bundles, PEM, DER
 * primitives, SyncML messages and the SCEP GET encoding round-trip the same way, and the
 * readers never throw anything but their typed errors on arbitrary input.
 *
 * The seed is fixed, so `npm test` tries the same cases every run; fast-check prints the seed
 * and the shrunk counterexample of a failure.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { buildCertificate, subjectAltName } from '../ca/certificate.ts';
import { encodeName, parseRfc4514 } from '../ca/name.ts';
import { buildSyncML, parseSyncML, SyncMLError, type Command, type Item } from '../omadm/syncml.ts';
import { buildCsr, parseCsr } from '../pki/csr.ts';
import * as der from '../pki/der.ts';
import { PkiError } from '../pki/errors.ts';
import { decodePem, encodePem } from '../pki/pem.ts';
import { encodePkcs7Certificates, parsePkcs7Certificates } from '../pki/pkcs7.ts';
import {
  formatName,
  inspectCertificate,
  parseCertificate,
  parseName,
  type Certificate,
} from '../pki/x509.ts';
import { decodeGetMessage } from '../scep/get-message.ts';

// FC_SEED and FC_RUNS explore further by hand: FC_SEED=$RANDOM FC_RUNS=2000 npx node --test …
fc.configureGlobal({
  seed: Number(process.env['FC_SEED'] ?? 20261125),
  numRuns: Number(process.env['FC_RUNS'] ?? 150),
});

const keys = {
  ec: generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  rsa: generateKeyPairSync('rsa', { modulusLength: 2048 }),
};
const spkiOf = (k: keyof typeof keys) =>
  new Uint8Array(keys[k].publicKey.export({ type: 'spki', format: 'der' }));

/** Text without the characters XML 1.0 cannot carry (§2.2 Char) nor lone surrogates. */
const xmlText = fc.string({ unit: 'grapheme', maxLength: 40 }).map((s) =>
  // oxlint-disable-next-line no-control-regex
  s.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, ''),
);
const printable = fc.stringMatching(/^[A-Za-z0-9 '()+,\-./:=?]{1,20}$/);
const ia5 = fc.stringMatching(/^[a-z0-9][a-z0-9.-]{0,30}$/);

/** RDNs in encoding order: one to four, each of one or two attributes. */
const rdns = fc.array(
  fc.array(
    fc.oneof(
      fc.record({
        type: fc.constantFrom('CN', 'O', 'OU', 'L', 'ST', 'title'),
        value: xmlText.filter((s) => s.length > 0),
      }),
      fc.record({ type: fc.constant('C'), value: fc.stringMatching(/^[A-Z]{2}$/) }),
      fc.record({ type: fc.constant('serialNumber'), value: printable }),
      fc.record({ type: fc.constant('emailAddress'), value: ia5 }),
    ),
    { minLength: 1, maxLength: 2 },
  ),
  { minLength: 1, maxLength: 4 },
);

/** Any instant UTCTime or GeneralizedTime can hold, whole seconds. */
const instant = fc
  .integer({ min: Date.UTC(1950, 0, 1) / 1000, max: Date.UTC(9999, 11, 31) / 1000 })
  .map((s) => new Date(s * 1000));

const certificateInput = fc.record({
  subject: rdns,
  issuer: rdns,
  serial: fc.uint8Array({ minLength: 1, maxLength: 20 }).filter((s) => s.some((b) => b !== 0)),
  times: fc
    .tuple(instant, instant)
    .map(([a, b]): readonly [Date, Date] => (a <= b ? [a, b] : [b, a])),
  dns: fc.array(ia5, { maxLength: 3 }),
  key: fc.constantFrom('ec' as const, 'rsa' as const),
});

type CertificateCase = typeof certificateInput extends fc.Arbitrary<infer T> ? T : never;

async function certificateOf(c: CertificateCase): Promise<Uint8Array> {
  return buildCertificate({
    subject: encodeName(c.subject),
    spki: spkiOf(c.key),
    serial: c.serial,
    notBefore: c.times[0],
    notAfter: c.times[1],
    issuer: { name: encodeName(c.issuer), key: keys.ec.privateKey, spki: spkiOf('ec') },
    extensions: c.dns.length
      ? [subjectAltName(c.dns.map((value) => ({ type: 'dns', value })))]
      : [],
  });
}

const magnitude = (b: Uint8Array) => {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
};

describe('properties: pki', () => {
  it('a certificate the CA builds parses back to what it was built from', async () => {
    await fc.assert(
      fc.asyncProperty(certificateInput, async (c) => {
        const cert = parseCertificate(await certificateOf(c));
        assert.deepEqual(cert.subject.der, encodeName(c.subject));
        assert.deepEqual(
          cert.subject.rdns.map((rdn) => rdn.map((a) => a.value).toSorted()),
          c.subject.map((rdn) => rdn.map((a) => a.value).toSorted()),
        );
        assert.deepEqual(cert.issuer.der, encodeName(c.issuer));
        assert.deepEqual(cert.serial, magnitude(c.serial));
        assert.equal(cert.notBefore.getTime(), c.times[0].getTime());
        assert.equal(cert.notAfter.getTime(), c.times[1].getTime());
        assert.deepEqual(cert.spki, spkiOf(c.key));
        assert.deepEqual(
          inspectCertificate(cert).subjectAltNames.map((s) => s.value),
          c.dns,
        );
      }),
      { numRuns: 60 },
    );
  });

  it('a name printed as RFC 4514 parses back to the same DER', () => {
    fc.assert(
      fc.property(rdns, (r) => {
        const name = encodeName(r);
        const text = formatName(parseName(der.decode(name), 'name'));
        assert.deepEqual(parseRfc4514(text), name, text);
      }),
    );
  });

  it('a PKCS#7 bundle keeps its certificates and their order', async () => {
    const pool = await Promise.all(
      fc.sample(certificateInput, { numRuns: 6, seed: 7 }).map(certificateOf),
    );
    const certs = pool.map(parseCertificate);
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...certs), { minLength: 1, maxLength: 12 }), (list) => {
        const back = parsePkcs7Certificates(encodePkcs7Certificates(list));
        assert.deepEqual(
          back.map((c: Certificate) => c.der),
          list.map((c) => c.der),
        );
      }),
    );
  });

  it('a CSR parses back with its subject, key, challenge and extensions', async () => {
    await fc.assert(
      fc.asyncProperty(
        rdns,
        fc.option(xmlText, { nil: undefined }),
        fc.array(ia5, { maxLength: 3 }),
        async (subject, challengePassword, dns) => {
          const extensions = dns.length
            ? [subjectAltName(dns.map((value) => ({ type: 'dns' as const, value })))]
            : [];
          const csr = parseCsr(
            await buildCsr({
              subject: encodeName(subject),
              key: keys.ec.privateKey,
              ...(challengePassword !== undefined ? { challengePassword } : {}),
              extensions,
            }),
          );
          assert.deepEqual(csr.subject.der, encodeName(subject));
          assert.deepEqual(csr.spki, spkiOf('ec'));
          assert.equal(csr.challengePassword, challengePassword);
          assert.deepEqual(
            csr.extensions.map((e) => [e.oid, e.critical, [...e.value]]),
            extensions.map((e) => [e.oid, e.critical, [...e.value]]),
          );
        },
      ),
      { numRuns: 60 },
    );
  });

  it('PEM: any bytes under any label read back', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[A-Z0-9]+( [A-Z0-9]+){0,3}$/),
        fc.uint8Array({ minLength: 1, maxLength: 3000 }),
        (label, bytes) => {
          const [block, ...rest] = decodePem(encodePem(label, bytes));
          assert.equal(rest.length, 0);
          assert.equal(block!.label, label);
          assert.deepEqual(block!.der, bytes);
        },
      ),
    );
  });

  it('DER: INTEGERs, OIDs and UTF8Strings read back; arbitrary bytes only ever give a PkiError', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 200n), max: 2n ** 200n }), (x) => {
        assert.equal(der.integer(der.decode(der.enc.int(x))), x);
      }),
    );
    const arc = fc.bigInt({ min: 0n, max: 2n ** 128n - 1n });
    const oid = fc
      .tuple(
        fc.integer({ min: 0, max: 2 }),
        fc.bigInt({ min: 0n, max: 39n }),
        fc.array(arc, { maxLength: 8 }),
      )
      .map(([a, b, rest]) => [String(a), String(b), ...rest.map(String)].join('.'));
    fc.assert(fc.property(oid, (o) => assert.equal(der.oid(der.decode(der.enc.oid(o))), o)));
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (s) =>
        assert.equal(der.string(der.decode(der.enc.utf8(s))), s),
      ),
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        try {
          const n = der.decode(b, true);
          if (n.constructed) der.children(n);
        } catch (e) {
          assert.ok(e instanceof PkiError, String(e));
        }
      }),
    );
  });
});

/** SyncML values: what the parser keeps (it trims surrounding whitespace). */
const value = xmlText.map((s) => s.trim());
const item: fc.Arbitrary<Item> = fc
  .record(
    {
      target: value,
      source: value,
      data: value,
      // An empty Meta is written as none: the model has no empty Meta.
      meta: fc
        .record(
          { format: fc.constantFrom('chr', 'int', 'b64', 'bool', 'xml'), type: value },
          { requiredKeys: [] },
        )
        .filter((m) => Object.keys(m).length > 0),
    },
    { requiredKeys: [] },
  )
  .map((i) => i as Item);
const cmdId = fc.integer({ min: 1, max: 9999 }).map(String);
const simple: fc.Arbitrary<Command> = fc.oneof(
  fc.record({
    kind: fc.constantFrom('Add', 'Replace', 'Delete', 'Get', 'Exec', 'Copy'),
    cmdId,
    items: fc.array(item, { maxLength: 3 }),
  }),
  fc.record({
    kind: fc.constant('Alert'),
    cmdId,
    data: fc.constantFrom('1200', '1201', '1222', '1224', '1226'),
    items: fc.array(item, { maxLength: 2 }),
  }),
  fc.record({
    kind: fc.constant('Status'),
    cmdId,
    msgRef: cmdId,
    cmdRef: fc.oneof(fc.constant('0'), cmdId),
    cmd: fc.constantFrom('SyncHdr', 'Get', 'Replace', 'Exec', 'Atomic'),
    data: fc.constantFrom('200', '400', '401', '404', '500'),
  }),
  fc.record({
    kind: fc.constant('Results'),
    cmdId,
    msgRef: cmdId,
    cmdRef: cmdId,
    items: fc.array(item, { maxLength: 3 }),
  }),
) as fc.Arbitrary<Command>;
const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 4, arbitrary: simple },
  {
    weight: 1,
    arbitrary: fc
      .record({
        kind: fc.constantFrom('Atomic', 'Sequence'),
        cmdId,
        commands: fc.array(simple, { minLength: 1, maxLength: 4 }),
      })
      .map((c) => c as Command),
  },
);
const message = fc.record({
  header: fc.record({
    sessionId: cmdId,
    msgId: cmdId,
    target: value.filter((s) => s.length > 0),
    source: value.filter((s) => s.length > 0),
  }),
  body: fc.array(command, { minLength: 1, maxLength: 6 }),
  final: fc.boolean(),
});

/** fast-check builds records without a prototype; compare plain data. */
const plain = (x: unknown): unknown => JSON.parse(JSON.stringify(x));

describe('properties: omadm', () => {
  it('a SyncML message parses back to what was built', () => {
    fc.assert(
      fc.property(message, (m) => assert.deepEqual(plain(parseSyncML(buildSyncML(m))), plain(m))),
    );
  });

  it('arbitrary text is a message or a SyncMLError, nothing else', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (s) => {
        try {
          parseSyncML(s);
        } catch (e) {
          assert.ok(e instanceof SyncMLError, String(e));
        }
      }),
    );
  });
});

const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');

describe('properties: SCEP GET message', () => {
  const message64 = fc.uint8Array({ minLength: 1, maxLength: 600 });

  it('decodes every way clients encode it (RFC 8894 §4.1, scep-reference.md §3)', () => {
    fc.assert(
      fc.property(message64, (b) => {
        const s = b64(b);
        const encodings = [
          encodeURIComponent(s), // what our client and most send
          s.replace(/=/g, '%3D'), // macOS: + and / raw
          s.replace(/=+$/, '').replace(/(.{64})/g, '$1%0A'), // sscep, Cisco: line breaks, no padding
          s.replace(/\+/g, '%20'), // a + that form-decoding turned into a space
          s.replace(/\+/g, '-').replace(/\//g, '_'), // the URL-safe alphabet
        ];
        for (const e of encodings) {
          assert.deepEqual(decodeGetMessage(`operation=PKIOperation&message=${e}`), b, e);
          assert.deepEqual(decodeGetMessage(`message=${e}&operation=PKIOperation`), b, e);
        }
      }),
    );
  });

  it('never throws on any query string', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (q) => {
        decodeGetMessage(q);
        decodeGetMessage(`operation=PKIOperation&message=${q}`);
      }),
    );
  });
});
