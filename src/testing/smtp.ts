/**
 * A real SMTP listener for tests (smtp-server on 127.0.0.1, a port the system picks): STARTTLS
 * with a certificate made for the test by openssl (or TLS from the first byte, or no TLS at all),
 * optional AUTH PLAIN/LOGIN for one user, recipients it refuses on request. It keeps every
 * message it accepts, raw, with its envelope and whether the session was encrypted and logged
 * in, and can write each one as an .eml file. Tests parse the messages with mailparser.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { opensslSelfSigned, tempDir } from './tools.ts';

export interface SmtpListenerOptions {
  /** `starttls` (default): plain, STARTTLS offered; `implicit`: smtps; `none`: STARTTLS refused. */
  readonly tls?: 'starttls' | 'implicit' | 'none';
  /** Require a login as this user (AUTH PLAIN or LOGIN, after TLS only). */
  readonly auth?: { readonly user: string; readonly password: string };
  /** Answer RCPT TO for these addresses with 550. */
  readonly refuse?: readonly string[];
  /** Write each accepted message to `<dir>/<n>.eml` (1, 2, …). */
  readonly emlDir?: string;
}

export interface ReceivedMessage {
  readonly from: string;
  readonly to: readonly string[];
  /** The message exactly as received (RFC 5322, CRLF line ends). */
  readonly raw: Buffer;
  /** The session was encrypted (implicit TLS or STARTTLS) when the message came. */
  readonly secure: boolean;
  /** The logged-in user, if any. */
  readonly user: string | undefined;
}

export interface SmtpListener {
  /** `smtp://127.0.0.1:PORT` or `smtps://…` (implicit TLS). */
  readonly url: string;
  readonly port: number;
  /** The listener's certificate (PEM): trust it as the relay CA. */
  readonly certificatePem: string;
  /** Accepted messages, in order. */
  readonly messages: ReceivedMessage[];
  /** Logins refused so far. */
  readonly authFailures: number;
  stop(): Promise<void>;
}

let identity: { key: string; cert: string } | undefined;

/** A key and a self-signed certificate for 127.0.0.1 and localhost, made once per process. */
export function listenerIdentity(): { key: string; cert: string } {
  identity ??= opensslSelfSigned(tempDir(), '/CN=certpost test SMTP listener', [
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ]);
  return identity;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Starts a listener; stop it with {@link SmtpListener.stop}. */
export async function startSmtpListener(o: SmtpListenerOptions = {}): Promise<SmtpListener> {
  const { key, cert } = listenerIdentity();
  const mode = o.tls ?? 'starttls';
  const messages: ReceivedMessage[] = [];
  const refuse = new Set((o.refuse ?? []).map((a) => a.toLowerCase()));
  const state = { authFailures: 0 };
  const options: SMTPServerOptions = {
    key,
    cert,
    secure: mode === 'implicit',
    ...(mode === 'none' ? { disabledCommands: ['STARTTLS'] } : {}),
    authMethods: ['PLAIN', 'LOGIN'],
    authOptional: o.auth === undefined,
    allowInsecureAuth: false,
    logger: false,
    closeTimeout: 1000,
    onAuth(auth, _session, callback) {
      const want = o.auth;
      const ok =
        want !== undefined &&
        auth.username === want.user &&
        timingSafeEqual(digest(auth.password ?? ''), digest(want.password));
      if (ok) return callback(null, { user: want.user });
      state.authFailures++;
      return callback(
        Object.assign(new Error('Invalid username or password'), { responseCode: 535 }),
      );
    },
    onRcptTo(address, _session, callback) {
      if (refuse.has(address.address.toLowerCase()))
        return callback(
          Object.assign(new Error(`<${address.address}>: no such user here`), {
            responseCode: 550,
          }),
        );
      return callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks);
        const mailFrom = session.envelope.mailFrom;
        messages.push({
          from: mailFrom ? mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw,
          secure: session.secure,
          user: typeof session.user === 'string' ? session.user : undefined,
        });
        if (o.emlDir) writeFileSync(join(o.emlDir, `${messages.length}.eml`), raw);
        callback();
      });
    },
  };
  const server = new SMTPServer(options);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const listener: SmtpListener = {
    url: `${mode === 'implicit' ? 'smtps' : 'smtp'}://127.0.0.1:${port}`,
    port,
    certificatePem: cert,
    messages,
    get authFailures() {
      return state.authFailures;
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  return listener;
}
