/**
 * Terminal and file I/O shared by the commands: reading an input, asking for a password
 * without echo, asking yes or no.
 * Outputs are written atomically (util/atomic-file.ts): a failed command leaves no partial file.
 */
import { decodePem } from '../pki/pem.ts';
import type { PasswordPrompt } from '../pki/read.ts';
import { readFile } from 'node:fs/promises';
import { readPinSource } from '../hsm/pkcs11.ts';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';

/** Reads a file, or standard input for `-`. */
export async function readInput(path: string): Promise<Uint8Array> {
  if (path === '-') {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return new Uint8Array(Buffer.concat(chunks));
  }
  return new Uint8Array(await readFile(path));
}

/** True when we may prompt: both stdin and stderr are terminals. */
export function canPrompt(): boolean {
  return Boolean(process.stdin.isTTY && process.stderr.isTTY);
}

/** Asks for a secret on the terminal without echoing it. */
export async function promptSecret(question: string): Promise<string> {
  const muted = new Writable({ write: (_chunk, _enc, cb) => cb() });
  const rl = createInterface({ input: process.stdin, output: muted, terminal: true });
  process.stderr.write(question);
  try {
    return await new Promise<string>((resolve) => rl.question('', resolve));
  } finally {
    rl.close();
    process.stderr.write('\n');
  }
}

/**
 * A {@link PasswordPrompt} on the terminal: asks `question` without echo, saying so first when
 * the previous answer was wrong.
 */
export function askPassword(question: string): PasswordPrompt {
  return async ({ wrong }) => {
    if (wrong) process.stderr.write('certpost: wrong password, try again\n');
    return await promptSecret(question);
  };
}

/** Asks a yes/no question on the terminal; only `y` or `yes` (any case) is a yes. */
export async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  try {
    const answer = await new Promise<string>((resolve) => rl.question(question, resolve));
    return /^\s*y(es)?\s*$/i.test(answer);
  } finally {
    rl.close();
  }
}

/**
 * The user PIN of a PKCS#11 token: the first line of `--pkcs11-pin-file`, else the
 * CERTPOST_PKCS11_PIN environment variable, else undefined. Never an argument: argv is
 * visible to other users.
 */
export async function pkcs11Pin(o: {
  pkcs11PinFile?: string | undefined;
}): Promise<string | undefined> {
  if (o.pkcs11PinFile !== undefined) return readPinSource(o.pkcs11PinFile);
  return process.env['CERTPOST_PKCS11_PIN'] || undefined;
}

/**
 * A secret kept in a file (`--password-file`, `--pin-file` …): its content without the one
 * line ending an editor adds. Never an argument: argv is visible to other users.
 */
export async function readSecretFile(path: string): Promise<string> {
  return (await readFile(path, 'utf8')).replace(/\r?\n$/, '');
}

/**
 * What a device enrolls with (`device enroll`, `fleet`): the token from --token-file (first
 * line) or CERTPOST_ENROLLMENT_TOKEN, and the PEM certificates of --ca-file, each when given.
 */
export async function enrollmentInputs(o: {
  tokenFile?: string | undefined;
  caFile?: string | undefined;
}): Promise<{ token: string | undefined; ca: string[] | undefined }> {
  const token =
    o.tokenFile !== undefined
      ? await readSecretFile(o.tokenFile)
      : process.env['CERTPOST_ENROLLMENT_TOKEN'];
  const ca =
    o.caFile === undefined
      ? undefined
      : decodePem(Buffer.from(await readInput(o.caFile)).toString('utf8'))
          .filter((b) => b.label === 'CERTIFICATE')
          .map((b) => b.text);
  return { token, ca };
}
