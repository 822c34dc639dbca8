import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as der from '../pki/der.ts';
import { Tag } from '../pki/der.ts';
import { isPkiError } from '../pki/errors.ts';
import { formatName, parseName, type Name } from '../pki/x509.ts';
import { run } from '../testing/tools.ts';
import { canonicalRfc4514, encodeName, parseRfc4514, parseX500 } from './name.ts';

const name = (bytes: Uint8Array): Name => parseName(der.decode(bytes), 'name');
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** The DER subject OpenSSL encodes for `req -subj` (its `/A=x/B=y` form is in encoding order). */
function opensslSubject(subj: string, multivalue = false): Uint8Array {
  const csr = run('openssl', [
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    '/dev/null',
    '-utf8',
    ...(multivalue ? ['-multivalue-rdn'] : []),
    '-subj',
    subj,
    '-outform',
    'DER',
  ]);
  const info = der.seq(der.decode(new Uint8Array(csr)), 'csr')[0];
  return der.raw(der.seq(info, 'info')[1]!);
}

describe('canonicalRfc4514', () => {
  it('gives the formatName form, whatever the spacing and attribute case', () => {
    assert.equal(canonicalRfc4514('cn = device-42, O=Contoso'), 'CN=device-42,O=Contoso');
    assert.equal(canonicalRfc4514('CN=a\\,b,O=x'), 'CN=a\\,b,O=x');
    assert.throws(() => canonicalRfc4514('not a name'));
  });
});

describe('parseRfc4514', () => {
  it('encodes the last RDN of the string first, and round-trips through formatName', () => {
    const s = 'CN=device 1,OU=IT,O=Contoso\\, Inc.,C=US';
    const n = name(parseRfc4514(s));
    assert.deepEqual(
      n.rdns.map((r) => r[0]!.type),
      ['C', 'O', 'OU', 'CN'],
    );
    assert.equal(formatName(n), s);
  });

  it('matches the bytes openssl req -subj produces, string types included', () => {
    const cases: [string, string][] = [
      ['CN=dev,O=Contoso\\, Inc.,C=US', '/C=US/O=Contoso, Inc./CN=dev'],
      [
        'CN=é ü,dnQualifier=x,serialNumber=123,emailAddress=a@b.c,DC=contoso,DC=com',
        '/DC=com/DC=contoso/emailAddress=a@b.c/serialNumber=123/dnQualifier=x/CN=é ü',
      ],
      ['CN=a\\+b\\;c\\<d\\>\\"e\\\\,L=Z\\C3\\BCrich', '/L=Zürich/CN=a\\+b;c<d>"e\\\\'],
      ['CN=x+UID=jdoe,O=Org', '/O=Org/CN=x+UID=jdoe'],
    ];
    for (const [rfc, subj] of cases) {
      assert.equal(
        hex(parseRfc4514(rfc)),
        hex(opensslSubject(subj, subj.includes('+UID'))),
        `${rfc} vs ${subj}`,
      );
    }
  });

  it('keeps escaped leading/trailing spaces, drops unescaped ones, reads #hex and dotted OIDs', () => {
    const n = name(parseRfc4514(' CN = \\ padded\\ , 2.5.4.10=#0c034f7267 , OID.2.5.4.11=Unit'));
    assert.deepEqual(
      n.rdns.map((r) => [r[0]!.type, r[0]!.value]),
      [
        ['OU', 'Unit'],
        ['O', 'Org'],
        ['CN', ' padded '],
      ],
    );
    assert.equal(n.rdns[1]![0]!.tag, Tag.UTF8_STRING);
  });

  it('round-trips formatName(parseName(x)) for names openssl wrote', () => {
    const der1 = opensslSubject('/C=DE/ST=Bayern/L=München/O=A\\, B/OU=X+CN=multi/CN= #lead', true);
    const s = formatName(name(der1));
    assert.equal(hex(parseRfc4514(s)), hex(der1), s);
  });

  it('encodes the empty string as the empty Name', () => {
    assert.equal(hex(parseRfc4514('')), '3000');
  });

  it('rejects unknown types, bad countries and broken syntax with ERR_PKI_INVALID_ARGUMENT', () => {
    for (const bad of [
      'XX=1',
      'C=USA',
      'CN',
      'CN=a,=b',
      'CN=a\\',
      'emailAddress=é@x',
      'CN=#zz',
      'CN=#0c05ab',
    ]) {
      assert.throws(
        () => parseRfc4514(bad),
        (e) => isPkiError(e, 'ERR_PKI_INVALID_ARGUMENT'),
        bad,
      );
    }
  });
});

describe('parseX500', () => {
  it('encodes the first RDN of the string first (Windows SubjectName order)', () => {
    const n = name(parseX500('CN=device,OU=IT,O=Contoso'));
    assert.deepEqual(
      n.rdns.map((r) => r[0]!.type),
      ['CN', 'OU', 'O'],
    );
    assert.equal(formatName(n), 'O=Contoso,OU=IT,CN=device');
  });

  it('reads quoted values, ";" separators and Windows aliases (E, S, T, G)', () => {
    const n = name(parseX500('CN="Doe, John";O="Contoso, Inc.";E=j@contoso.com;S=WA;T=Eng;G=John'));
    assert.deepEqual(
      n.rdns.map((r) => [r[0]!.type, r[0]!.value, r[0]!.tag]),
      [
        ['CN', 'Doe, John', Tag.UTF8_STRING],
        ['O', 'Contoso, Inc.', Tag.UTF8_STRING],
        ['emailAddress', 'j@contoso.com', Tag.IA5_STRING],
        ['ST', 'WA', Tag.UTF8_STRING],
        ['title', 'Eng', Tag.UTF8_STRING],
        ['GN', 'John', Tag.UTF8_STRING],
      ],
    );
    assert.equal(name(parseX500('CN="say ""hi"""')).rdns[0]![0]!.value, 'say "hi"');
  });

  it('equals parseRfc4514 of the reversed string', () => {
    assert.equal(
      hex(parseX500('C=US,O=Contoso,CN=x+UID=1')),
      hex(parseRfc4514('CN=x+UID=1,O=Contoso,C=US')),
    );
  });

  it('matches openssl for the SCEP client subject', () => {
    assert.equal(
      hex(parseX500('C=US,O=scep-client,OU=MDM,CN=my-device')),
      hex(opensslSubject('/C=US/O=scep-client/OU=MDM/CN=my-device')),
    );
  });
});

describe('encodeName', () => {
  it('encodes structured RDNs in the order given', () => {
    const bytes = encodeName([[{ type: 'C', value: 'US' }], [{ type: 'CN', value: 'x' }]]);
    assert.equal(hex(bytes), hex(parseX500('C=US,CN=x')));
  });
});
