/**
 * `certpost install`, `store` and `select` as a person and a script run them: real processes on
 * a device state directory, inputs made with openssl (testing/test-pki.ts), a message composed
 * with nodemailer, downloads from loopback servers, and a real terminal (testing/pty.ts) for
 * the password and confirmation prompts. Every refusal leaves state.json byte-identical.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import MailComposer from 'nodemailer/lib/mail-composer';
import { runInPty } from '../testing/pty.ts';
import { makeTestPki, PFX_PASSWORD, type TestPki } from '../testing/test-pki.ts';
import { freePort, tempDir } from '../testing/tools.ts';
import { EXIT } from './exit-codes.ts';

const BIN = new URL('../../bin/certpost.js', import.meta.url).pathname;
/** No secrets from the environment: each test says which it passes. */
const ENV = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !k.startsWith('CERTPOST_')),
);

let pki: TestPki;
let http: Server;
let httpUrl = '';

before(async () => {
  pki = makeTestPki();
  http = createServer((req, res) => {
    try {
      res.end(readFileSync(pki.path((req.url ?? '/').slice(1))));
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  httpUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
});

after(async () => {
  await new Promise((resolve) => http.close(resolve));
});

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs certpost (asynchronously: the test's own HTTP server must keep answering). */
function certpost(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...ENV, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const state = (dir: string) => ['--state', dir];
/** certpost install on a terminal (testing/pty.ts). */
const argv = (dir: string, ...args: string[]) => [
  process.execPath,
  BIN,
  'install',
  ...args,
  ...state(dir),
];
const stateFile = (dir: string) => readFileSync(join(dir, 'state.json'));

let trusting = '';
/**
 * A device that trusts the test root and knows its issuing CA: a copy of one made once by
 * `certpost install root.der inter.pem --yes`.
 */
async function trustingDevice(): Promise<string> {
  if (!trusting) {
    trusting = tempDir();
    const r = await certpost([
      'install',
      pki.path('root.der'),
      pki.path('inter.pem'),
      '--yes',
      ...state(trusting),
    ]);
    assert.equal(r.code, 0, r.stderr);
  }
  const dir = join(tempDir(), 'device');
  cpSync(trusting, dir, { recursive: true });
  return dir;
}

/** Expects the command to fail with `code`, one line on stderr matching, and no change. */
async function refused(
  dir: string,
  args: readonly string[],
  code: number,
  message: RegExp,
  env = {},
) {
  const file = stateFile(dir);
  const r = await certpost([...args, ...state(dir)], env);
  assert.equal(r.code, code, `${r.stdout}\n${r.stderr}`);
  const errors = r.stderr
    .split('\n')
    .filter((l) => l.startsWith('certpost:') && !l.startsWith('certpost: warning:'));
  assert.equal(errors.length, 1, r.stderr);
  assert.match(errors[0]!, message);
  assert.deepEqual(stateFile(dir), file, 'state.json is byte-identical');
  return r;
}

interface Listed {
  scope: string;
  store: string;
  thumbprint: string;
  key?: { provider: string; exportable: boolean };
}

async function listed(dir: string): Promise<string[]> {
  const r = await certpost(['store', 'list', '--json', ...state(dir)]);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as Listed[])
    .map((c) => `${c.scope}/${c.store} ${c.thumbprint}${c.key ? ` key:${c.key.provider}` : ''}`)
    .toSorted();
}

describe('certpost install --yes', () => {
  it('installs each format into the right stores, as store list shows', async () => {
    const dir = await trustingDevice();
    const passwordFile = join(tempDir(), 'pw');
    writeFileSync(passwordFile, `${PFX_PASSWORD}\n`);
    const bundle = join(tempDir(), 'people.pem');
    writeFileSync(
      bundle,
      readFileSync(pki.path('bob.pem'), 'utf8') + readFileSync(pki.path('server.pem'), 'utf8'),
    );
    const r = await certpost([
      'install',
      pki.path('alice.pfx'),
      bundle,
      '--password-file',
      passwordFile,
      '--yes',
      ...state(dir),
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /Reading 2 inputs:\n .*alice\.pfx: PKCS12 \(binary\)\n .*people\.pem: PEM \(pem\)/,
    );
    assert.match(
      r.stdout,
      /Install into: +device My \(certificate with its private key: personal store\)/,
    );
    assert.match(
      r.stdout,
      /installed: device\/My +[0-9A-F]{40} +CN=alice,O=certpost tests +\(private key: software\)/,
    );
    assert.match(r.stdout, /already there: device\/Root/);
    assert.deepEqual(
      await listed(dir),
      [
        `device/CA ${pki.sha1('inter')}`,
        `device/My ${pki.sha1('alice')} key:software`,
        `device/Root ${pki.sha1('root')}`,
        `device/TrustedPeople ${pki.sha1('bob')}`,
        `device/TrustedPeople ${pki.sha1('server')}`,
      ].toSorted(),
    );
  });

  it('a .eml with several attachments, --json, the PFX password from CERTPOST_PFX_PASSWORD', async () => {
    const dir = tempDir();
    const eml = join(tempDir(), 'mail.eml');
    const message = new MailComposer({
      from: 'it@example.test',
      to: 'alice@example.test',
      subject: 'Certificates',
      text: 'See attachments.',
      attachments: [
        {
          filename: 'root.cer',
          content: Buffer.from(pki.bytes('root.der')),
          contentType: 'application/pkix-cert',
        },
        {
          filename: 'id.pfx',
          content: Buffer.from(pki.bytes('alice.pfx')),
          contentType: 'application/x-pkcs12',
        },
        { filename: 'notes.txt', content: 'hello' },
      ],
    });
    writeFileSync(eml, await message.compile().build());
    const r = await certpost(['install', eml, '--yes', '--json', ...state(dir)], {
      CERTPOST_PFX_PASSWORD: PFX_PASSWORD,
    });
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as {
      sources: { name: string; format: string }[];
      messages: { subject: string; skipped: { filename: string }[] }[];
      certificates: { sha1: string; trust: { status: string }; install: { store: string } }[];
      installed: { store: string; thumbprint: string; key?: string }[];
    };
    assert.deepEqual(
      doc.sources.map((s) => [s.name, s.format]),
      [
        [`${eml} › root.cer`, 'der'],
        [`${eml} › id.pfx`, 'pkcs12'],
      ],
    );
    assert.deepEqual(
      doc.messages[0]!.skipped.map((s) => s.filename),
      ['notes.txt'],
    );
    assert.deepEqual(
      doc.certificates.map((c) => [c.install.store, c.trust.status]),
      [
        ['Root', 'trusted-by-new-root'],
        ['My', 'trusted-by-new-root'],
        ['CA', 'trusted-by-new-root'],
      ],
    );
    assert.deepEqual(
      doc.installed.map((i) => `${i.store} ${i.thumbprint}${i.key ? ` ${i.key}` : ''}`),
      [`Root ${pki.sha1('root')}`, `My ${pki.sha1('alice')} software`, `CA ${pki.sha1('inter')}`],
    );
  });

  it('over plain HTTP with a warning', async () => {
    const dir = await trustingDevice();
    const r = await certpost(['install', `${httpUrl}/bob.pem`, '--yes', ...state(dir)]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      /^certpost: warning: http:\/\/127\.0\.0\.1:\d+\/bob\.pem is plain HTTP/m,
    );
    assert.ok((await listed(dir)).includes(`device/TrustedPeople ${pki.sha1('bob')}`));
  });
});

describe('certpost install refusals change nothing', () => {
  it('without --yes and without a terminal: refuses rather than waits', async () => {
    const dir = await trustingDevice();
    const r = await refused(
      dir,
      ['install', pki.path('bob.pem')],
      EXIT.usage,
      /not on a terminal, so nobody can answer the question: run again with --yes/,
    );
    assert.match(r.stdout, /Certificate 1 of 1: end entity/, 'the review is shown first');
  });

  it('password missing or wrong; a corrupt file; not a certificate', async () => {
    const dir = await trustingDevice();
    await refused(
      dir,
      ['install', pki.path('alice.pfx'), '--yes'],
      EXIT.password,
      /alice\.pfx is protected by a password, and none was given/,
    );
    const wrong = join(tempDir(), 'pw');
    writeFileSync(wrong, 'not it\n');
    await refused(
      dir,
      ['install', pki.path('alice.pfx'), '--yes', '--password-file', wrong],
      EXIT.password,
      /^certpost: wrong password for .*alice\.pfx$/,
    );
    const cut = join(tempDir(), 'cut.cer');
    writeFileSync(cut, pki.bytes('bob.der').subarray(0, 200));
    await refused(
      dir,
      ['install', cut, '--yes'],
      EXIT.input,
      /cut\.cer is damaged: the input is truncated/,
    );
    const text = join(tempDir(), 'notes.cer');
    writeFileSync(text, 'dear diary\n');
    await refused(dir, ['install', text, '--yes'], EXIT.input, /notes\.cer is not a certificate/);
    await refused(
      dir,
      ['install', join(tempDir(), 'missing.cer'), '--yes'],
      EXIT.input,
      /no such file: .*missing\.cer/,
    );
  });

  it('an untrusted chain (exit 14, after the review), unless --allow-untrusted', async () => {
    const dir = await trustingDevice();
    const r = await refused(
      dir,
      ['install', pki.path('stranger.pem'), '--yes'],
      EXIT.untrusted,
      /nothing installed: "CN=stranger,O=certpost tests" \(for TrustedPeople\): not trusted/,
    );
    assert.match(r.stdout, /Trust: +not trusted: CN=stranger/);
    const ok = await certpost([
      'install',
      pki.path('stranger.pem'),
      '--yes',
      '--allow-untrusted',
      ...state(dir),
    ]);
    assert.equal(ok.code, 0, ok.stderr);
  });

  it('network failures: an unreachable server, an HTTPS server the device does not trust', async () => {
    const dir = await trustingDevice();
    const port = await freePort();
    await refused(
      dir,
      ['install', `http://127.0.0.1:${port}/root.cer`, '--yes'],
      EXIT.network,
      new RegExp(`cannot reach http://127\\.0\\.0\\.1:${port}/root\\.cer: .*ECONNREFUSED`),
    );
    const { createServer: createHttps } = await import('node:https');
    const tls = createHttps(
      { key: readFileSync(pki.path('self.key')), cert: readFileSync(pki.path('self.pem')) },
      (_req, res) => res.end(readFileSync(pki.path('bob.pem'))),
    );
    await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve));
    try {
      const url = `https://127.0.0.1:${(tls.address() as AddressInfo).port}/bob.pem`;
      await refused(
        dir,
        ['install', url, '--yes'],
        EXIT.network,
        /server's certificate is not trusted by this device \(DEPTH_ZERO_SELF_SIGNED_CERT\)/,
      );
    } finally {
      await new Promise((resolve) => tls.close(resolve));
    }
  });
});

describe('certpost install on a terminal', () => {
  it('asks the PFX password without echo, again when wrong, then asks to confirm', async () => {
    const dir = await trustingDevice();
    const r = runInPty(
      argv(dir, pki.path('alice.pfx')),
      [
        ['Password for', 'first-wrong-guess'],
        // The next prompt, after "wrong password, try again" (typing ahead of a prompt echoes,
        // on any terminal).
        ['Password for', PFX_PASSWORD],
        ['[y/N] ', 'y'],
      ],
      ENV,
    );
    assert.equal(r.status, 0, r.output);
    assert.doesNotMatch(r.output, /first-wrong-guess|Pa55/, 'passwords are not echoed');
    assert.match(r.output, /alice\.pfx: \r\ncertpost: wrong password, try again\r\nPassword for /);
    // Readline moves the cursor (ESC [ n G) before it echoes the answer.
    assert.match(
      r.output.replaceAll('\u001b', '^'),
      /Install 1 certificate into device My\? \[y\/N\] (\^\[\d+G)?y/,
    );
    assert.match(r.output, /installed: device\/My/);
    assert.ok((await listed(dir)).includes(`device/My ${pki.sha1('alice')} key:software`));
  });

  it('a new root is named in the question; answering no changes nothing (exit 15)', async () => {
    const dir = await trustingDevice();
    const file = stateFile(dir);
    const r = runInPty(argv(dir, pki.path('other-root.pem')), [['[y/N] ', 'n']], ENV);
    assert.equal(r.status, EXIT.cancelled, r.output);
    assert.match(
      r.output,
      /This adds a new trusted root \(CN=other-root,O=certpost tests\): this device will trust whatever it signs\./,
    );
    assert.match(r.output, /nothing changed: not confirmed/);
    assert.deepEqual(stateFile(dir), file);
  });
});

describe('certpost store', () => {
  it('show, and delete with --yes (without it and without a terminal, nothing)', async () => {
    const dir = await trustingDevice();
    const pw = join(tempDir(), 'pw');
    writeFileSync(pw, PFX_PASSWORD);
    assert.equal(
      (
        await certpost([
          'install',
          pki.path('alice.pfx'),
          '--password-file',
          pw,
          '--yes',
          ...state(dir),
        ])
      ).code,
      0,
    );
    const alice = pki.sha1('alice');
    const colons = alice.toLowerCase().match(/../g)!.join(':');
    const show = await certpost(['store', 'show', colons, ...state(dir)]);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /Subject: +CN=alice,O=certpost tests/);
    assert.match(
      show.stdout,
      /Trust: +trusted: CN=alice,O=certpost tests → CN=inter,O=certpost tests → CN=root,O=certpost tests/,
    );
    assert.match(show.stdout, /Store: +device My\n/);
    assert.match(show.stdout, /Key: +software, not exportable/);
    await refused(dir, ['store', 'delete', alice], EXIT.usage, /not on a terminal/);
    const del = await certpost(['store', 'delete', alice, '--yes', ...state(dir)]);
    assert.equal(del.code, 0, del.stderr);
    assert.match(
      del.stdout,
      /^deleted device\/My +[0-9A-F]{40} +CN=alice,O=certpost tests \(and its private key\)$/m,
    );
    const data = JSON.parse(stateFile(dir).toString()) as { keys: unknown[] };
    assert.deepEqual(data.keys, [], 'the key went with it');
    await refused(
      dir,
      ['store', 'show', alice],
      EXIT.notFound,
      new RegExp(`no certificate ${alice}`),
    );
    await refused(dir, ['store', 'delete', 'abc'], EXIT.usage, /40 hex digits/);
  });
});

describe('certpost select', () => {
  it('warns when several client certificates match, and exits 16 when none does', async () => {
    const dir = await trustingDevice();
    const pw = join(tempDir(), 'pw');
    writeFileSync(pw, PFX_PASSWORD);
    const r = await certpost([
      'install',
      pki.path('alice.pfx'),
      pki.path('dave.pfx'),
      '--password-file',
      pw,
      '--yes',
      ...state(dir),
    ]);
    assert.equal(r.code, 0, r.stderr);
    const s = await certpost([
      'select',
      '--eku',
      'clientAuth',
      '--issuer',
      'CN=inter,O=certpost tests',
      ...state(dir),
    ]);
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.stdout, /^Chosen: device\/My +[0-9A-F]{40} +CN=(alice|dave),O=certpost tests\n/);
    assert.match(
      s.stderr,
      /^certpost: warning: 2 certificates match these criteria, and Windows does not say which one it uses: .*CN=alice.*CN=dave|CN=dave.*CN=alice/m,
    );
    const json = await certpost(['select', '--eku', '1.3.6.1.5.5.7.3.2', '--json', ...state(dir)]);
    const doc = JSON.parse(json.stdout) as { chosen: string; candidates: { matches: boolean }[] };
    assert.equal(doc.candidates.filter((c) => c.matches).length, 2);
    const none = await certpost(['select', '--eku', 'serverAuth', ...state(dir)]);
    assert.equal(none.code, EXIT.notFound);
    assert.match(
      none.stdout,
      /No certificate of device\/My matches\.\nNot chosen:\n .*EKU clientAuth, emailProtection, not serverAuth/,
    );
  });
});
