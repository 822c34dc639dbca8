/**
 * The thread behind {@link unwrapOffThread} (unwrap-thread.ts): RSAES-PKCS1-v1_5 decryption
 * (RFC 8017 §7.2.2) with OpenSSL's implicit rejection, the same `crypto.privateDecrypt` call as
 * on the main thread. Each message carries its key (a KeyObject crosses threads by reference to
 * the same OpenSSL key, nothing is re-parsed) and is answered once, by its `id`.
 */
import { constants, privateDecrypt, type KeyObject } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

export interface UnwrapRequest {
  readonly id: number;
  readonly key: KeyObject;
  readonly ciphertext: Uint8Array;
}

export type UnwrapReply =
  | { readonly id: number; readonly plaintext: Uint8Array }
  | { readonly id: number; readonly error: { readonly message: string; readonly code?: string } };

parentPort?.on('message', ({ id, key, ciphertext }: UnwrapRequest) => {
  let plaintext: Uint8Array<ArrayBuffer>;
  try {
    // A copy of exactly its bytes (the Buffer may be a slice of Node's pool), moved, not cloned.
    plaintext = new Uint8Array(
      privateDecrypt({ key, padding: constants.RSA_PKCS1_PADDING }, ciphertext),
    );
  } catch (e) {
    const { message, code } = e as { message?: unknown; code?: unknown };
    const reply: UnwrapReply = {
      id,
      error: {
        message: String(message),
        ...(typeof code === 'string' ? { code } : {}),
      },
    };
    parentPort!.postMessage(reply, []);
    return;
  }
  const reply: UnwrapReply = { id, plaintext };
  parentPort!.postMessage(reply, [plaintext.buffer]);
});
