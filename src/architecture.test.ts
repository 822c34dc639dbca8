/**
 * Enforces the component boundaries of design.md §2: dependencies point inward, and protocol
 * and format code never imports HTTP, SQL or mail. A new import that crosses a boundary fails
 * here, with the file and the rule it broke.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { it } from 'node:test';

const SRC = new URL('.', import.meta.url).pathname;

/** Which components each component may import (itself is always allowed). */
const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  pki: [],
  util: [],
  ca: ['pki', 'store', 'util'],
  scep: ['pki', 'ca'],
  omadm: ['pki'],
  // util is a leaf (file-system wording for errors); the store uses nothing else.
  store: ['util'],
  hsm: ['pki', 'util'],
  // Mail as a format and a transport: composing and reading messages with certificate
  // attachments, sending over SMTP (style.md: "Mailer port + SMTP adapter").
  mail: ['pki', 'util'],
  server: ['pki', 'ca', 'scep', 'omadm', 'store', 'hsm', 'mail', 'util'],
  // The device builds names and CSR extensions with the CA's encoders (ca/name, ca/certificate).
  // The installer reads certificate attachments out of .eml messages (mail/, reading only).
  device: ['pki', 'ca', 'scep', 'omadm', 'hsm', 'mail', 'util'],
  cli: ['pki', 'ca', 'scep', 'omadm', 'store', 'server', 'device', 'hsm', 'mail', 'util'],
  testing: [],
  // Fuzz targets over the parsers that take outside bytes (design.md §2 pure cores), and over
  // whole exchanges: the server's MDM session and the device agent, in one process. The
  // recorder of their seeds (record.ts) runs the reference SCEP server of testing/.
  fuzz: ['pki', 'scep', 'omadm', 'ca', 'mail', 'util', 'server', 'device', 'testing'],
  // Tests of the two programs talking to each other: the server and device agents in one process.
  e2e: ['pki', 'ca', 'scep', 'omadm', 'store', 'server', 'device', 'hsm', 'mail', 'util'],
};

/**
 * A component outside `store` may see storage only through its role interfaces (types.ts), as
 * nanomdm's service layer sees `storage.AllStorage`; backends are chosen in the server alone.
 */
const STORE_ROLES = 'store/types.ts';
const BACKEND_USERS = new Set(['server', 'cli', 'store']);

/**
 * Packages that mean transport, storage or native code; the pure cores must not touch them
 * (a CA key in a token reaches `ca` as a `PrivateKeyRef` built by `hsm`).
 */
const IO_MODULES =
  /^(node:)?(http|https|http2|net|tls|dgram|sqlite)$|^(fastify|kysely|pg|nodemailer|smtp-server|undici|pkcs11js|graphene-pk11)(\/|$)/;
const PURE = new Set(['pki', 'scep', 'omadm', 'ca']);

function* files(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'testdata') yield* files(p);
    } else if (e.name.endsWith('.ts')) yield p;
  }
}

const IMPORT =
  /(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s*['"]([^'"]+)['"]|\bimport\s*\(?\s*['"]([^'"]+)['"]/g;

it('every import respects the component boundaries', () => {
  const problems: string[] = [];
  for (const file of files(SRC)) {
    const rel = relative(SRC, file);
    const component = rel.split(sep)[0]!;
    if (!component.includes('.') && !(component in ALLOWED))
      problems.push(`${rel}: unknown component "${component}" (add it to ALLOWED)`);
    const isTest = file.endsWith('.test.ts');
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(IMPORT)) {
      const spec = m[1] ?? m[2]!;
      if (spec.startsWith('.')) {
        const target = relative(SRC, join(file, '..', spec)).split(sep)[0]!;
        if (target.startsWith('..')) continue; // package.json and friends
        if (target === component || target.includes('.')) continue;
        if (target === 'testing' && isTest) continue;
        if (!ALLOWED[component]?.includes(target))
          problems.push(`${rel}: ${component} must not import ${target} (${spec})`);
        const targetPath = relative(SRC, join(file, '..', spec))
          .split(sep)
          .join('/');
        if (
          target === 'store' &&
          !isTest &&
          !BACKEND_USERS.has(component) &&
          targetPath !== STORE_ROLES
        ) {
          problems.push(
            `${rel}: ${component} may import only ${STORE_ROLES} from store, not ${spec}`,
          );
        }
      } else if (PURE.has(component) && !isTest && IO_MODULES.test(spec)) {
        problems.push(`${rel}: ${component} is a pure core and must not import ${spec}`);
      }
    }
  }
  assert.deepEqual(problems, []);
});
