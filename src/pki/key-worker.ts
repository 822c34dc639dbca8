/**
 * The body of a private-key thread (key-threads.ts): the same `crypto.sign` and
 * `crypto.privateDecrypt` calls as on the main thread, run synchronously here. Decryption is
 * RSAES-PKCS1-v1_5 (RFC 8017 §7.2.2) with OpenSSL's implicit rejection. Each message carries
 * its key (a KeyObject crosses threads by reference to the same OpenSSL key, nothing is
 * re-parsed) and is answered once, by its `id`.
 */
import { constants, privateDecrypt, sign, type KeyObject } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

/** What to do with which key. */
export type KeyOperation =
  | { readonly op: 'sign'; readonly key: KeyObject; readonly hash: string | null }
  | { readonly op: 'decrypt'; readonly key: KeyObject };

export type KeyRequest = KeyOperation & { readonly id: number; readonly data: Uint8Array };

export type KeyReply =
  | { readonly id: number; readonly result: Uint8Array }
  | { readonly id: number; readonly error: { readonly message: string; readonly code?: string } };

function run(r: KeyRequest): Uint8Array<ArrayBuffer> {
  // A copy of exactly its bytes (the Buffer may be a slice of Node's pool), moved, not cloned.
  if (r.op === 'sign') return new Uint8Array(sign(r.hash, r.data, r.key));
  return new Uint8Array(
    privateDecrypt({ key: r.key, padding: constants.RSA_PKCS1_PADDING }, r.data),
  );
}

parentPort?.on('message', (r: KeyRequest) => {
  let result: Uint8Array<ArrayBuffer>;
  try {
    result = run(r);
  } catch (e) {
    const { message, code } = e as { message?: unknown; code?: unknown };
    const reply: KeyReply = {
      id: r.id,
      error: { message: String(message), ...(typeof code === 'string' ? { code } : {}) },
    };
    parentPort!.postMessage(reply, []);
    return;
  }
  const reply: KeyReply = { id: r.id, result };
  parentPort!.postMessage(reply, [result.buffer]);
});
