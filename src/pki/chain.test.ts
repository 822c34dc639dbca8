/**
 * Chain building and validation, cross-checked against `openssl verify`: every case asserts
 * our verdict and that OpenSSL reaches the same one (exit status 0 or not) on the same files.
 * The PKI is generated at test time in a temporary directory (no fixtures to go stale).
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { run, tempDir } from '../testing/tools.ts';
import {
  buildChain,
  checkSignature,
  describeTrust,
  verifySignature,
  type ChainOptions,
  type ChainProblemCode,
} from './chain.ts';
import { parseCertificate, sha1Thumbprint, type Certificate } from './x509.ts';

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';

const EXTENSIONS = `
[root]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[inter0]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ca_noks]
basicConstraints = critical,CA:TRUE
keyUsage = critical,digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = DNS:leaf.example
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[email]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = emailProtection
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[server_v1]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
subjectKeyIdentifier = hash
[ca_email]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
extendedKeyUsage = emailProtection
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[critical]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
1.3.6.1.4.1.99999.1 = critical,ASN1:NULL
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;

const CA_CONFIG = `
[ca]
default_ca = here
[here]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = anything
unique_subject = no
[anything]
commonName = supplied
`;

type KeyKind = 'rsa' | 'ec' | 'ed25519';

/** The generated PKI: certificates by name, and the directory holding `<name>.pem`. */
class Pki {
  readonly dir = tempDir('certpost-chain-');
  readonly certs = new Map<string, Certificate>();
  #serial = 1;

  constructor() {
    writeFileSync(join(this.dir, 'ext.cnf'), EXTENSIONS);
    writeFileSync(join(this.dir, 'ca.cnf'), CA_CONFIG);
    writeFileSync(join(this.dir, 'index.txt'), '');
    writeFileSync(join(this.dir, 'serial'), '1000\n');
  }

  ssl(...args: string[]): Buffer {
    return run('openssl', args, { cwd: this.dir });
  }

  key(name: string, kind: KeyKind): void {
    const opts: Record<KeyKind, string[]> = {
      rsa: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
      ec: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
      ed25519: ['-algorithm', 'ED25519'],
    };
    this.ssl('genpkey', ...opts[kind], '-out', `${name}.key`);
  }

  csr(name: string, cn: string, keyName = name): void {
    this.ssl('req', '-new', '-key', `${keyName}.key`, '-subj', `/CN=${cn}`, '-out', `${name}.csr`);
  }

  /**
   * Issues `name` (CN `cn`, key `keyName`) with extension section `ext` (none, so a v1
   * certificate, when null), signed by `issuer` or by its own key when `issuer` is null.
   * `sign` adds digest/sigopt arguments.
   */
  issue(
    name: string,
    cn: string,
    ext: string | null,
    issuer: string | null,
    opts: { kind?: KeyKind; keyName?: string; sign?: string[] } = {},
  ): Certificate {
    const keyName = opts.keyName ?? name;
    if (!opts.keyName) this.key(name, opts.kind ?? 'ec');
    this.csr(name, cn, keyName);
    const by = issuer
      ? ['-CA', `${issuer}.pem`, '-CAkey', `${issuer}.key`]
      : ['-signkey', `${keyName}.key`];
    const sign = opts.sign ?? (opts.kind === 'ed25519' || issuer === 'edca' ? [] : ['-sha256']);
    this.ssl(
      'x509', '-req', '-in', `${name}.csr`, ...by, ...sign, '-days', '3650',
      '-set_serial', String(this.#serial++), '-out', `${name}.pem`,
      ...(ext ? ['-extfile', 'ext.cnf', '-extensions', ext] : []),
    ); // prettier-ignore
    return this.load(name);
  }

  /** Issues with `openssl ca` to set arbitrary validity dates (YYYYMMDDHHMMSSZ). */
  issueDated(name: string, cn: string, issuer: string, start: string, end: string): Certificate {
    this.key(name, 'ec');
    this.csr(name, cn);
    this.ssl(
      'ca', '-config', 'ca.cnf', '-batch', '-notext', '-cert', `${issuer}.pem`,
      '-keyfile', `${issuer}.key`, '-in', `${name}.csr`, '-out', `${name}.pem`,
      '-startdate', start, '-enddate', end, '-extfile', 'ext.cnf', '-extensions', 'server',
    ); // prettier-ignore
    return this.load(name);
  }

  load(name: string): Certificate {
    const cert = parseCertificate(pemToDer(readFileSync(join(this.dir, `${name}.pem`), 'utf8')));
    this.certs.set(name, cert);
    return cert;
  }

  /** Stores DER bytes as `<name>.pem` (for certificates we altered ourselves). */
  save(name: string, der: Uint8Array): Certificate {
    const b64 = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n');
    writeFileSync(
      join(this.dir, `${name}.pem`),
      `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`,
    );
    return this.load(name);
  }

  get(name: string): Certificate {
    const c = this.certs.get(name);
    if (!c) throw new Error(`no certificate ${name}`);
    return c;
  }

  /** Concatenates PEM files into one (OpenSSL's -CAfile/-untrusted take one file each). */
  bundle(names: readonly string[]): string {
    const file = `bundle-${names.join('+')}.pem`;
    const text = names.map((n) => readFileSync(join(this.dir, `${n}.pem`), 'utf8')).join('');
    writeFileSync(join(this.dir, file), text);
    return file;
  }

  /** `openssl verify` exit status as a boolean. */
  opensslVerifies(c: Case): boolean {
    const args = ['verify', '-CAfile', this.bundle(c.trusted)];
    if (c.untrusted?.length) args.push('-untrusted', this.bundle(c.untrusted));
    if (c.purpose) args.push('-purpose', 'sslserver');
    args.push(...(c.opensslArgs ?? []), `${c.leaf}.pem`);
    try {
      this.ssl(...args);
      return true;
    } catch (e) {
      if ((e as Error).message.includes('not installed')) throw e;
      return false;
    }
  }
}

function pemToDer(pem: string): Uint8Array {
  const body = /-----BEGIN CERTIFICATE-----([^-]+)-----END CERTIFICATE-----/.exec(pem)?.[1];
  if (!body) throw new Error('no PEM certificate');
  return new Uint8Array(Buffer.from(body.replace(/\s+/g, ''), 'base64'));
}

interface Case {
  readonly leaf: string;
  readonly trusted: readonly string[];
  readonly untrusted?: readonly string[];
  /** Require serverAuth (`-purpose sslserver` for OpenSSL). */
  readonly purpose?: boolean;
  readonly options?: Partial<ChainOptions>;
  readonly opensslArgs?: readonly string[];
  /** `true` for a trusted chain, or the problem code we must report. */
  readonly expect: true | ChainProblemCode;
  /** Subjects expected in the chain, leaf first. */
  readonly chain?: readonly string[];
}

function buildPki(): Pki {
  const p = new Pki();
  p.issue('root', 'Test Root', 'root', null, { kind: 'rsa' });
  p.issue('inter', 'Test Intermediate', 'inter0', 'root');
  p.issue('leaf', 'leaf.example', 'server', 'inter');
  p.issueDated('expired', 'expired.example', 'inter', '20200101000000Z', '20210101000000Z');
  p.issueDated('future', 'future.example', 'inter', '20990101000000Z', '21000101000000Z');
  p.issue('inter2', 'Second Intermediate', 'ca', 'inter');
  p.issue('deep', 'deep.example', 'server', 'inter2');
  p.issue('noks', 'No KeyCertSign CA', 'ca_noks', 'root');
  p.issue('noksleaf', 'noks.example', 'server', 'noks');
  p.issue('email', 'mail user', 'email', 'inter');
  const good = p.get('leaf').der;
  const flipped = Uint8Array.from(good);
  flipped[flipped.length - 1]! ^= 0x01;
  p.save('badsig', flipped);
  p.issue('pss', 'pss.example', 'server', 'root', {
    sign: ['-sha256', '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:32'],
  });
  p.issue('pss384', 'pss384.example', 'server', 'root', {
    sign: ['-sha384', '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:-1'],
  });
  p.issue('edca', 'Ed25519 CA', 'ca', 'root', { kind: 'ed25519' });
  p.issue('edleaf', 'ed.example', 'server', 'edca', { kind: 'ed25519' });
  p.issue('root2', 'Test Root 2', 'root', null);
  p.issue('interx', 'Test Intermediate', 'inter0', 'root2', { keyName: 'inter' });
  p.issue('critical', 'critical.example', 'critical', 'inter');
  p.issue('sha1leaf', 'sha1.example', 'server', 'root', { sign: ['-sha1'] });
  p.issue('md5leaf', 'md5.example', 'server', 'root', { sign: ['-md5'] });
  p.issue('victim', 'victim.example', 'server', 'leaf');
  p.issue('loopb0', 'Loop B', 'ca', null);
  p.issue('loopa', 'Loop A', 'ca', 'loopb0');
  p.issue('loopb', 'Loop B', 'ca', 'loopa', { keyName: 'loopb0' });
  p.issue('loopleaf', 'loop.example', 'server', 'loopa');
  p.issue('selfleaf', 'self.example', 'server', null);
  p.issue('v1root', 'Legacy v1 Root', null, null);
  p.issue('v1leaf', 'v1.example', 'server_v1', 'v1root');
  p.issue('v1inter', 'Legacy v1 Intermediate', null, 'root');
  p.issue('v1interleaf', 'v1i.example', 'server_v1', 'v1inter');
  p.issue('ekuinter', 'Mail-only CA', 'ca_email', 'root');
  p.issue('ekuinterleaf', 'tls.example', 'server', 'ekuinter');
  return p;
}

const CASES: Readonly<Record<string, Case>> = {
  'a valid chain root (RSA) → intermediate (EC, pathlen 0) → leaf': {
    leaf: 'leaf',
    trusted: ['root'],
    untrusted: ['inter'],
    purpose: true,
    expect: true,
    chain: ['CN=leaf.example', 'CN=Test Intermediate', 'CN=Test Root'],
  },
  'a missing intermediate': { leaf: 'leaf', trusted: ['root'], expect: 'issuer-not-found' },
  'a chain to a root that is not trusted': {
    leaf: 'leaf',
    trusted: ['root2'],
    untrusted: ['inter', 'root'],
    expect: 'untrusted-root',
  },
  'an expired leaf': {
    leaf: 'expired',
    trusted: ['root'],
    untrusted: ['inter'],
    expect: 'expired',
  },
  'a leaf not yet valid': {
    leaf: 'future',
    trusted: ['root'],
    untrusted: ['inter'],
    expect: 'not-yet-valid',
  },
  'a chain checked in 2050, after every certificate expired': {
    leaf: 'leaf',
    trusted: ['root'],
    untrusted: ['inter'],
    options: { at: new Date('2050-01-01T00:00:00Z') },
    opensslArgs: ['-attime', String(Date.parse('2050-01-01T00:00:00Z') / 1000)],
    expect: 'expired',
  },
  'an intermediate below a pathlen:0 intermediate': {
    leaf: 'deep',
    trusted: ['root'],
    untrusted: ['inter', 'inter2'],
    expect: 'path-length-exceeded',
  },
  'an intermediate without keyCertSign': {
    leaf: 'noksleaf',
    trusted: ['root'],
    untrusted: ['noks'],
    expect: 'key-usage',
  },
  'an emailProtection-only leaf used for serverAuth': {
    leaf: 'email',
    trusted: ['root'],
    untrusted: ['inter'],
    purpose: true,
    expect: 'extended-key-usage',
  },
  'an emailProtection-only leaf without a purpose': {
    leaf: 'email',
    trusted: ['root'],
    untrusted: ['inter'],
    expect: true,
  },
  'a leaf whose signature was altered': {
    leaf: 'badsig',
    trusted: ['root'],
    untrusted: ['inter'],
    expect: 'bad-signature',
  },
  'an RSASSA-PSS signature (SHA-256, salt 32)': { leaf: 'pss', trusted: ['root'], expect: true },
  'an RSASSA-PSS signature (SHA-384, salt = digest length)': {
    leaf: 'pss384',
    trusted: ['root'],
    expect: true,
  },
  'Ed25519 CA and leaf': {
    leaf: 'edleaf',
    trusted: ['root'],
    untrusted: ['edca'],
    purpose: true,
    expect: true,
  },
  'a cross-signed intermediate, reached through the second root': {
    leaf: 'leaf',
    trusted: ['root2'],
    untrusted: ['interx', 'inter'],
    expect: true,
    chain: ['CN=leaf.example', 'CN=Test Intermediate', 'CN=Test Root 2'],
  },
  'a cross-signed intermediate, reached through the first root': {
    leaf: 'leaf',
    trusted: ['root'],
    untrusted: ['inter', 'interx'],
    expect: true,
    chain: ['CN=leaf.example', 'CN=Test Intermediate', 'CN=Test Root'],
  },
  'an unrecognized critical extension': {
    leaf: 'critical',
    trusted: ['root'],
    untrusted: ['inter'],
    expect: 'unknown-critical-extension',
  },
  'a SHA-1 signature (accepted by default)': { leaf: 'sha1leaf', trusted: ['root'], expect: true },
  'a SHA-1 signature with rejectSha1 (OpenSSL: -auth_level 2)': {
    leaf: 'sha1leaf',
    trusted: ['root'],
    options: { rejectSha1: true },
    opensslArgs: ['-auth_level', '2'],
    expect: 'weak-signature-algorithm',
  },
  'an MD5 signature (OpenSSL: -auth_level 1)': {
    leaf: 'md5leaf',
    trusted: ['root'],
    opensslArgs: ['-auth_level', '1'],
    expect: 'weak-signature-algorithm',
  },
  'an end-entity certificate used as an issuer': {
    leaf: 'victim',
    trusted: ['root'],
    untrusted: ['inter', 'leaf'],
    expect: 'not-a-ca',
  },
  'two intermediates that issued each other': {
    leaf: 'loopleaf',
    trusted: ['root'],
    untrusted: ['loopa', 'loopb'],
    expect: 'loop',
  },
  'a v1 self-signed root as the trust anchor': {
    leaf: 'v1leaf',
    trusted: ['v1root'],
    expect: true,
  },
  'a v1 certificate used as an intermediate': {
    leaf: 'v1interleaf',
    trusted: ['root'],
    untrusted: ['v1inter'],
    expect: 'not-a-ca',
  },
  'an intermediate restricted to emailProtection, for serverAuth': {
    leaf: 'ekuinterleaf',
    trusted: ['root'],
    untrusted: ['ekuinter'],
    purpose: true,
    expect: 'extended-key-usage',
  },
  'an intermediate restricted to emailProtection, without a purpose': {
    leaf: 'ekuinterleaf',
    trusted: ['root'],
    untrusted: ['ekuinter'],
    expect: true,
  },
  'a self-signed leaf that is not trusted': {
    leaf: 'selfleaf',
    trusted: ['root'],
    expect: 'untrusted-root',
  },
  'a self-signed leaf that is itself trusted': {
    leaf: 'selfleaf',
    trusted: ['selfleaf'],
    purpose: true,
    expect: true,
    chain: ['CN=self.example'],
  },
};

describe('chain', () => {
  let pki: Pki;
  before(() => {
    pki = buildPki();
  });

  for (const [name, c] of Object.entries(CASES)) {
    it(`${name}: ${c.expect === true ? 'trusted' : c.expect}, as OpenSSL says`, () => {
      const r = buildChain(pki.get(c.leaf), {
        trusted: c.trusted.map((n) => pki.get(n)),
        intermediates: (c.untrusted ?? []).map((n) => pki.get(n)),
        ...(c.purpose ? { purpose: SERVER_AUTH } : {}),
        ...c.options,
      });
      const detail = describeTrust(r);
      if (c.expect === true) {
        assert.deepEqual(r.problems, [], detail);
        assert.equal(r.trusted, true);
      } else {
        assert.equal(r.trusted, false, detail);
        assert.ok(
          r.problems.some((p) => p.code === c.expect),
          `expected ${c.expect}: ${JSON.stringify(r.problems)}`,
        );
      }
      if (c.chain) assert.deepEqual(r.chain.map(subjectOf), c.chain);
      assert.equal(pki.opensslVerifies(c), c.expect === true, 'OpenSSL disagrees');
    });
  }

  it('names the certificate and the reason in plain words', () => {
    const r = buildChain(pki.get('expired'), {
      trusted: [pki.get('root')],
      intermediates: [pki.get('inter')],
    });
    assert.deepEqual(r.problems, [
      {
        code: 'expired',
        message: 'certificate expired on 2021-01-01T00:00:00.000Z',
        certificate: sha1Thumbprint(pki.get('expired')),
        subject: 'CN=expired.example',
      },
    ]);
    assert.match(describeTrust(r), /^not trusted: CN=expired\.example: certificate expired on/);
  });

  it('reports path length on the constraining CA, counting intermediates below it', () => {
    const r = buildChain(pki.get('deep'), {
      trusted: [pki.get('root')],
      intermediates: [pki.get('inter2'), pki.get('inter')],
    });
    const p = r.problems.find((x) => x.code === 'path-length-exceeded');
    assert.equal(p?.subject, 'CN=Test Intermediate');
    assert.match(p.message, /pathLenConstraint 0 .* has 1/);
  });

  it('verifies each signature family directly', () => {
    const spki = (n: string) => pki.get(n).spki;
    assert.equal(verifySignature(pki.get('inter'), spki('root')), true); // RSA PKCS#1 v1.5
    assert.equal(verifySignature(pki.get('leaf'), spki('inter')), true); // ECDSA
    assert.equal(verifySignature(pki.get('pss'), spki('root')), true); // RSASSA-PSS
    assert.equal(verifySignature(pki.get('edleaf'), spki('edca')), true); // Ed25519
    assert.equal(verifySignature(pki.get('badsig'), spki('inter')), false);
    assert.equal(verifySignature(pki.get('leaf'), spki('root')), false); // ECDSA vs RSA key
    const mismatch = checkSignature(pki.get('leaf'), spki('root'));
    assert.equal(mismatch.ok ? null : mismatch.code, 'signature-algorithm-mismatch');
  });

  it('reports an unknown signature algorithm as a failure, without throwing', () => {
    const leaf = pki.get('leaf');
    const odd: Certificate = { ...leaf, signatureAlgorithm: '1.2.3.4.5' };
    const check = checkSignature(odd, pki.get('inter').spki);
    assert.equal(check.ok, false);
    assert.match(check.ok ? '' : check.reason, /unsupported signature algorithm 1\.2\.3\.4\.5/);
    assert.equal(verifySignature(leaf, Uint8Array.of(1, 2, 3)), false);
  });

  it('detects a TBS signature algorithm that differs from the outer one', () => {
    const leaf = pki.get('leaf');
    const odd: Certificate = { ...leaf, signatureAlgorithm: '1.2.840.10045.4.3.3' };
    const check = checkSignature(odd, pki.get('inter').spki);
    assert.equal(check.ok ? null : check.code, 'signature-algorithm-mismatch');
  });

  it('reports malformed extensions as problems instead of throwing', () => {
    const r = buildChain(garble(pki.get('leaf'), '2.5.29.35'), {
      trusted: [pki.get('root')],
      intermediates: [garble(pki.get('inter'), '2.5.29.19')],
      purpose: SERVER_AUTH,
    });
    assert.equal(r.trusted, false);
    assert.deepEqual(
      r.problems.map((p) => [p.code, p.message]),
      [['not-a-ca', 'malformed basicConstraints extension']],
    );
  });

  it('stops at maxDepth', () => {
    const r = buildChain(pki.get('leaf'), {
      trusted: [pki.get('root')],
      intermediates: [pki.get('inter')],
      maxDepth: 1,
    });
    assert.equal(r.trusted, false);
    assert.deepEqual(
      r.problems.map((p) => p.code),
      ['path-length-exceeded'],
    );
  });
});

function subjectOf(c: Certificate): string {
  return c.subject.rdns.map((rdn) => rdn.map((a) => `${a.type}=${a.value}`).join('+')).join(',');
}

/** A copy of `c` whose extension `oid` holds a truncated SEQUENCE. */
function garble(c: Certificate, oid: string): Certificate {
  const broken = Uint8Array.of(0x30, 0x05);
  return {
    ...c,
    extensions: c.extensions.map((e) => (e.oid === oid ? { ...e, value: broken } : e)),
  };
}
