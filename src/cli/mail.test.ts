/**
 * Email delivery as an operator runs it: `certpost mail send` and `certpost serve` with the
 * admin API, real processes, a real SMTP listener on loopback (STARTTLS and a login). The
 * message arrives with the right attachment (checked with openssl), the blocked .cer switches
 * format, a PFX password is printed once and is in neither the mail, the output of the server,
 * nor the audit log; each relay failure has its exit code and a message without the relay
 * password; only sent mails are audited.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { simpleParser } from 'mailparser';
import { createApiToken } from '../server/admin-ops.ts';
import { openContext } from '../server/context.ts';
import { escrowedSerial, issuedSerial } from '../server/testing.ts';
import { spawnServe } from '../testing/serve-process.ts';
import { startSmtpListener, type SmtpListener } from '../testing/smtp.ts';
import { freePort, opensslPkcs12Info, run, tempDir } from '../testing/tools.ts';

const BIN = new URL('../../bin/certpost.js', import.meta.url).pathname;
const TESTDATA = new URL('../mail/testdata/', import.meta.url).pathname;
const RELAY_USER = 'certpost';
const RELAY_PASSWORD = 'relay-pass-Wm47-unique';
const work = tempDir();
const data = join(work, 'data');
const passwordFile = join(work, 'smtp.pw');
const caFile = join(work, 'relay-ca.pem');
let relay: SmtpListener;
let serial = '';
let escrowed = '';
let apiToken = '';

/** The environment without the caller's CERTPOST_* settings, plus `env`. */
function envWith(env: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CERTPOST_'))),
    ...env,
  };
}

/** Runs certpost without blocking this process (the SMTP listener lives here). */
function certpost(args: readonly string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: envWith(env) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A relay and a sender, nothing else: no login, the system's roots. */
const bareRelay = (url: string) => ['--smtp-url', url, '--smtp-from', 'pki@contoso.example'];

/** The relay settings as flags (the password comes from CERTPOST_SMTP_PASSWORD_FILE). */
const relayFlags = () => [
  '--smtp-url',
  `${relay.url}?starttls=required`,
  '--smtp-from',
  'Contoso PKI <pki@contoso.example>',
  '--smtp-user',
  RELAY_USER,
  '--smtp-ca-file',
  caFile,
  '--mail-blocked',
  'cer',
];
const RELAY_ENV = () => ({ CERTPOST_SMTP_PASSWORD_FILE: passwordFile });

function send(args: readonly string[], env = RELAY_ENV()) {
  return certpost(['mail', 'send', '--data', data, ...relayFlags(), ...args], env);
}

async function mailedAudit() {
  const ctx = await openContext({ dataDir: data });
  try {
    return await ctx.store.listAudit({ action: 'certificate.mailed', limit: 100 });
  } finally {
    await ctx.close();
  }
}

/** The last message's single attachment, saved to a file, and the raw message. */
async function lastAttachment() {
  const got = relay.messages.at(-1)!;
  assert.equal(got.secure, true);
  assert.equal(got.user, RELAY_USER);
  const parsed = await simpleParser(got.raw);
  const [a] = parsed.attachments;
  assert.ok(a);
  const file = join(work, `${relay.messages.length}-${a.filename}`);
  writeFileSync(file, a.content);
  return { a, file, raw: got.raw, text: parsed.text ?? '' };
}

before(async () => {
  relay = await startSmtpListener({ auth: { user: RELAY_USER, password: RELAY_PASSWORD } });
  writeFileSync(caFile, relay.certificatePem);
  writeFileSync(passwordFile, `${RELAY_PASSWORD}\n`);
  const ctx = await openContext({ dataDir: data, createCa: true });
  try {
    serial = await issuedSerial(ctx, 'CN=alice,O=Contoso');
    escrowed = await escrowedSerial(ctx, 'CN=bob@example.com');
    apiToken = (await createApiToken(ctx, 'test', { name: 'ops' })).token;
  } finally {
    await ctx.close();
  }
});
after(async () => {
  await relay.stop();
});

describe('certpost mail send', () => {
  it('a serial: the blocked .cer goes as .p7b with the chain, and the command says so', async () => {
    const r = await send(['--to', 'alice@example.com', '--cert', serial, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const sent = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.equal(sent['format'], 'p7b');
    assert.equal(sent['requested'], 'cer');
    assert.match(String(sent['switched']), /blocks \.cer/);
    const { a, file, text } = await lastAttachment();
    assert.equal(a.contentType, 'application/x-pkcs7-certificates');
    assert.equal(a.filename, 'alice.p7b');
    const certs = run('openssl', ['pkcs7', '-inform', 'DER', '-in', file, '-print_certs']);
    assert.equal(certs.toString().match(/^subject=/gm)?.length, 3);
    assert.ok(text.includes(String(sent['sha1'])));
  });

  it('a file: its end-entity certificate, as asked (.crt is not blocked), in text output', async () => {
    const bundle = join(work, 'bundle.pem');
    writeFileSync(
      bundle,
      ['root.pem', 'user.pem', 'issuing.pem']
        .map((f) => readFileSync(join(TESTDATA, f), 'utf8'))
        .join(''),
    );
    const r = await send(['--to', 'alice@example.com', '--cert', bundle, '--format', 'crt']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /^sent .*,CN=Alice Example \(Contoso\),.* to alice@example\.com as Alice-Example-Contoso\.crt, message <.+>\n$/,
    );
    const { a, file } = await lastAttachment();
    assert.equal(a.contentType, 'application/pkix-cert');
    const subject = run('openssl', ['x509', '-inform', 'DER', '-in', file, '-noout', '-subject']);
    assert.match(subject.toString(), /CN = Alice Example \(Contoso\)/);
  });

  it('a PFX from the escrow: the password is printed once, opens the attachment, and is not in the mail', async () => {
    const r = await send(['--to', 'bob@example.com', '--cert', escrowed, '--format', 'pfx']);
    assert.equal(r.code, 0, r.stderr);
    const password = /not shown again\):\n([A-Za-z0-9_-]{32})\n$/.exec(r.stdout)?.[1];
    assert.ok(password, r.stdout);
    const { a, file, raw, text } = await lastAttachment();
    assert.equal(a.contentType, 'application/x-pkcs12');
    const info = opensslPkcs12Info(file, password);
    assert.match(info, /-----BEGIN PRIVATE KEY-----/);
    assert.ok(!raw.includes(password));
    assert.match(text, /password that is not in this message/);

    // The operator's own password, from a file: used, and not printed.
    const own = join(work, 'pfx.pw');
    writeFileSync(own, 'operator-chosen-pw\n');
    const mine = await send([
      '--to',
      'bob@example.com',
      '--cert',
      escrowed,
      '--format',
      'pfx',
      '--password-file',
      own,
    ]);
    assert.equal(mine.code, 0, mine.stderr);
    assert.doesNotMatch(mine.stdout, /password/i);
    const second = await lastAttachment();
    assert.match(opensslPkcs12Info(second.file, 'operator-chosen-pw'), /BEGIN PRIVATE KEY/);
    assert.ok(!second.raw.includes('operator-chosen-pw'));
  });

  it('failures: their exit codes, clear messages without the relay password, nothing sent or audited', async () => {
    const delivered = relay.messages.length;
    const audits = (await mailedAudit()).length;
    const wrongPw = join(work, 'wrong.pw');
    writeFileSync(wrongPw, 'not-the-password\n');
    const port = await freePort();
    const cases: [string, Promise<{ code: number | null; stderr: string }>, number, RegExp][] = [
      [
        'wrong relay password',
        send(['--to', 'a@example.com', '--cert', serial], { CERTPOST_SMTP_PASSWORD_FILE: wrongPw }),
        4,
        /the mail relay refused the login: smtp:\/\/127\.0\.0\.1:\d+: it answered "535/,
      ],
      [
        'unreachable relay',
        certpost([
          'mail',
          'send',
          '--data',
          data,
          ...bareRelay(`smtp://127.0.0.1:${port}`),
          '--to',
          'a@example.com',
          '--cert',
          serial,
        ]),
        10,
        /cannot connect to the mail relay: smtp:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/,
      ],
      [
        'untrusted relay certificate',
        certpost(
          [
            'mail',
            'send',
            '--data',
            data,
            ...bareRelay(relay.url),
            '--smtp-user',
            RELAY_USER,
            '--to',
            'a@example.com',
            '--cert',
            serial,
          ],
          RELAY_ENV(),
        ),
        10,
        /TLS with the mail relay failed: .*self-signed certificate/,
      ],
      [
        'no escrowed key',
        send(['--to', 'a@example.com', '--cert', serial, '--format', 'pfx']),
        3,
        /no escrowed key for serial/,
      ],
      [
        'not an address',
        send(['--to', 'alice', '--cert', serial]),
        2,
        /not a mail address: recipient "alice"/,
      ],
      [
        'no relay',
        certpost(['mail', 'send', '--data', data, '--to', 'a@example.com', '--cert', serial]),
        2,
        /no mail relay is configured: start certpost with --smtp-url/,
      ],
      [
        'a setting without a relay',
        certpost([
          'mail',
          'send',
          '--data',
          data,
          '--mail-blocked',
          'cer',
          '--to',
          'a@example.com',
          '--cert',
          serial,
        ]),
        2,
        /--mail-blocked given without --smtp-url/,
      ],
      [
        'no such file',
        send(['--to', 'a@example.com', '--cert', join(work, 'nope.pem')]),
        3,
        /no such file/,
      ],
    ];
    for (const [what, pending, code, message] of cases) {
      const r = await pending;
      assert.equal(r.code, code, `${what}: ${r.stderr}`);
      assert.match(r.stderr, message, what);
      assert.ok(!r.stderr.includes(RELAY_PASSWORD) && !r.stderr.includes('not-the-password'), what);
    }
    assert.equal(relay.messages.length, delivered);
    const audit = await mailedAudit();
    assert.equal(audit.length, audits);
    // The successful sends above, and only they, are in the audit log: who, to whom, what, how.
    assert.deepEqual(
      audit.map((e) => [e.actor, e.details['to'], e.details['format']]).toReversed(),
      [
        ['cli', 'alice@example.com', 'p7b'],
        ['cli', 'alice@example.com', 'crt'],
        ['cli', 'bob@example.com', 'pfx'],
        ['cli', 'bob@example.com', 'pfx'],
      ],
    );
    assert.ok(!JSON.stringify(audit).includes('operator-chosen-pw'));
  });

  it('the device installs what arrived: the received .eml with the chain, then the PFX with its password', async () => {
    // The two channels meet: a mail this CA sent, saved as the user's mail client saves it.
    const chain = await send(['--to', 'carol@example.com', '--cert', serial, '--json']);
    assert.equal(chain.code, 0, chain.stderr);
    const chainEml = join(work, 'chain.eml');
    writeFileSync(chainEml, relay.messages.at(-1)!.raw);
    const pfx = await send(['--to', 'bob@example.com', '--cert', escrowed, '--format', 'pfx']);
    assert.equal(pfx.code, 0, pfx.stderr);
    const password = /not shown again\):\n([A-Za-z0-9_-]{32})\n$/.exec(pfx.stdout)?.[1];
    assert.ok(password);
    const pfxEml = join(work, 'pfx.eml');
    writeFileSync(pfxEml, relay.messages.at(-1)!.raw);
    const pfxPassword = join(work, 'received-pfx.pw');
    writeFileSync(pfxPassword, `${password}\n`);

    const state = join(work, 'device');
    const installed = await certpost(['install', chainEml, '--yes', '--state', state, '--json']);
    assert.equal(installed.code, 0, installed.stderr);
    const withKey = await certpost([
      'install',
      pfxEml,
      '--yes',
      '--password-file',
      pfxPassword,
      '--state',
      state,
      '--json',
    ]);
    assert.equal(withKey.code, 0, withKey.stderr);
    const listed = await certpost(['store', 'list', '--state', state, '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const entries = JSON.parse(listed.stdout) as { store: string; subject: string; key?: object }[];
    const stores = entries.map((c) => `${c.store} ${c.subject}`).toSorted();
    assert.ok(entries.find((c) => c.store === 'My')?.key, 'the PFX key came with it');
    assert.ok(
      stores.some((s) => s.startsWith('Root CN=certpost development root CA')),
      stores.join('\n'),
    );
    assert.ok(
      stores.some((s) => s.startsWith('CA CN=certpost development issuing CA')),
      stores.join('\n'),
    );
    assert.ok(stores.includes('TrustedPeople CN=alice,O=Contoso'), stores.join('\n'));
    assert.ok(stores.includes('My CN=bob@example.com'), stores.join('\n'));
  });
});

describe('certpost serve with a relay', () => {
  it('refuses to start with a half-configured relay, naming the flag', async () => {
    const r = await certpost([
      'serve',
      '--data',
      data,
      '--listen',
      '127.0.0.1:0',
      ...bareRelay(relay.url),
      '--smtp-user',
      RELAY_USER,
    ]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /--smtp-password-file \(CERTPOST_SMTP_PASSWORD_FILE\): a relay user is given but no password/,
    );
  });

  it('mails through the admin API; neither password reaches its output', async () => {
    const server = await spawnServe(['--data', data, '--log-level', 'debug', ...relayFlags()], {
      env: envWith(RELAY_ENV()),
    });
    let password = '';
    try {
      const res = await fetch(`${server.url}/api/v1/certificates/${escrowed}/mail`, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ to: 'bob@example.com', format: 'pfx' }),
      });
      const body = (await res.json()) as { format: string; password: string; messageId: string };
      assert.equal(res.status, 200, JSON.stringify(body));
      password = body.password;
      const { raw } = await lastAttachment();
      assert.ok(raw.includes(body.messageId));
      assert.ok(!raw.includes(password));
    } finally {
      await server.stop();
    }
    const logs = server.output() + server.stderr();
    assert.match(logs, /certificate mail goes through this relay/);
    assert.ok(password && !logs.includes(password), 'the PFX password is not in the logs');
    assert.ok(!logs.includes(RELAY_PASSWORD), 'the relay password is not in the logs');
  });
});
