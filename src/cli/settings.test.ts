/**
 * Settings from a configuration file (settings.ts), with the real `certpost` process: the
 * order command line > environment > file > default, paths relative to the file, one file
 * for `serve` and the admin commands, and every mistake refused before anything starts, in one
 * line naming the setting and where it came from, with nothing created.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { spawnServe } from '../testing/serve-process.ts';
import { tempDir } from '../testing/tools.ts';

const BIN = new URL('../../bin/certpost.js', import.meta.url).pathname;
/** No setting from this process's environment: each test says which it sets. */
const ENV = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !k.startsWith('CERTPOST_')),
);
let dir = '';

function certpost(args: readonly string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...ENV, ...env },
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Writes a configuration file (mode 600 unless told) and returns its path. */
function config(name: string, text: string, mode = 0o600): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  chmodSync(path, mode);
  return path;
}

before(() => {
  dir = tempDir();
  mkdirSync(join(dir, 'etc'));
});

describe('configuration file', () => {
  it('serve takes its settings from the file; relative paths are relative to the file; the environment and flags win', async () => {
    const file = config(
      'etc/certpost.toml',
      [
        '# a deployment',
        'data = "../srv/data"',
        'log-level = "debug"',
        'public-url = "https://mdm.example.test"',
        'inventory-interval = "12h"',
        'workers = 1',
        'trust-proxy = ["127.0.0.1", "10.0.0.0/8"]',
        'smtp-url = "smtp://127.0.0.1:2525"',
        'smtp-from = "pki@example.test"',
        'mail-blocked = ["cer", "crt"]',
        '',
      ].join('\n'),
    );
    const server = await spawnServe(['--config', file], {
      env: { ...ENV, CERTPOST_LOG_LEVEL: 'warn' },
    });
    try {
      assert.equal(server.listening['dataDir'], join(dir, 'srv/data'));
      assert.ok(existsSync(join(dir, 'srv/data/certpost.db')));
      // The environment's warn beat the file's debug: no per-request line at info.
      await fetch(`${server.url}/scep?operation=GetCACaps`);
      // The file's public URL is what devices are told.
      const discovery = await fetch(`${server.url}/EnrollmentServer/Discovery.svc`, {
        method: 'POST',
        headers: { 'content-type': 'application/soap+xml; charset=utf-8' },
        body: '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body/></s:Envelope>',
      });
      assert.ok(discovery.status >= 200);
    } finally {
      await server.stop();
    }
    assert.ok(!server.output().includes('"msg":"request"'), 'warn from the environment won');
    // The admin commands read the same file and take the keys they have.
    const list = certpost(['certificates', 'list', '--config', file, '--json']);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(JSON.parse(list.stdout), { certificates: [] });
    // A flag beats the file.
    const other = certpost(['user', 'list', '--config', file, '--data', 'elsewhere']);
    assert.equal(other.code, 0, other.stderr);
    assert.ok(existsSync(join(dir, 'elsewhere/certpost.db')));
  });

  it('CERTPOST_CONFIG names the file when --config does not', () => {
    const file = config('etc/env.toml', 'data = "env-data"\n');
    const r = certpost(['user', 'list', '--json'], { CERTPOST_CONFIG: file });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(join(dir, 'etc/env-data/certpost.db')));
  });

  const refusals: [string, string, RegExp][] = [
    ['typo', 'lissten = "127.0.0.1:1"\n', /unknown setting "lissten" \(did you mean "listen"\?\)/],
    ['not toml', 'listen = 127.0.0.1:1\n', /at line 1, column \d+: not valid TOML/],
    ['wrong type', 'tls = "yes"\n', /tls in .*: must be true or false/],
    ['list wanted', 'trust-proxy = 10\n', /trust-proxy in .*: must be a list of text/],
    ['bad choice', 'log-level = "loud"\n', /log-level in .*: "loud" is not one of fatal, error/],
    ['bad listen', 'listen = "everywhere"\n', /listen in .*: --listen must be host:port/],
    ['bad workers', 'workers = 0\n', /workers in .*: must be a whole number from 1 to 64/],
    ['bad duration', 'inventory-interval = "soon"\n', /inventory-interval in .*: not a duration/],
    ['bad proxy', 'trust-proxy = ["10.0.0.0/33"]\n', /trust-proxy in .*: "10.0.0.0\/33" is not/],
    [
      'bad url',
      'public-url = "mdm.example.test"\n',
      /public-url in .*: "mdm.example.test" is not an http\(s\) URL/,
    ],
    [
      'bad mail type',
      'smtp-url = "smtp://127.0.0.1:2525"\nsmtp-from = "a@example.test"\nmail-blocked = ["cer", "c/r"]\n',
      /"c\/r" is not a file extension/,
    ],
  ];
  for (const [name, text, message] of refusals)
    it(`refuses ${name} in one line, starting nothing`, () => {
      const data = join(dir, `never-${name.replaceAll(' ', '-')}`);
      const file = config(`${name.replaceAll(' ', '-')}.toml`, text);
      const r = certpost(['serve', '--config', file, '--data', data]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.ok(!existsSync(data), 'nothing was created');
    });

  it('names the environment variable when that is where a bad value came from', () => {
    const r = certpost(['serve', '--data', join(dir, 'never-env')], { CERTPOST_WORKERS: 'many' });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^certpost: CERTPOST_WORKERS: must be a whole number/);
    const tls = certpost(['serve', '--data', join(dir, 'never-env')], { CERTPOST_TLS: 'perhaps' });
    assert.match(tls.stderr, /CERTPOST_TLS: must be 1 or 0/);
  });

  it('refuses a secret in a file other users may read, and a file it cannot read', () => {
    const open = config('open.toml', 'scep-challenge = "s3cret"\n', 0o644);
    const r = certpost(['serve', '--config', open, '--data', join(dir, 'never-secret')]);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /holds the secret "scep-challenge" but other users may read it: chmod 600/,
    );
    assert.ok(!r.stderr.includes('s3cret'));
    const missing = certpost(['serve', '--config', join(dir, 'nope.toml')]);
    assert.equal(missing.code, 3);
    assert.match(missing.stderr, /cannot read the configuration file .*nope\.toml/);
  });
});
