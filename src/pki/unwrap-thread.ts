/**
 * RSA key unwrapping off the event loop. Node has no asynchronous `privateDecrypt` (the
 * callback forms of `crypto.sign` and friends run in libuv's thread pool; this one does not),
 * and a SCEP server unwraps a content key for every PKIOperation: on the main thread that is
 * about a third of a millisecond during which no other request moves. So software keys unwrap
 * in one worker thread, started on first use.
 *
 * Contract: the result is exactly `privateDecrypt({ key, padding: RSA_PKCS1_PADDING }, c)`'s,
 * implicit rejection included (a bad padding yields OpenSSL's synthetic message, not an error);
 * an error it throws (a ciphertext longer than the modulus, a key that is not RSA) rejects the
 * promise with the same message and `code`. The thread keeps the process alive only while an
 * unwrap is pending; if it dies, the pending unwraps reject and the next one starts a new thread.
 */
import type { KeyObject } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { UnwrapReply, UnwrapRequest } from './unwrap-worker.ts';

interface Pending {
  resolve(plaintext: Uint8Array): void;
  reject(e: Error): void;
}

interface UnwrapThread {
  readonly worker: Worker;
  readonly pending: Map<number, Pending>;
}

let thread: UnwrapThread | undefined;
let lastId = 0;

function start(): UnwrapThread {
  const worker = new Worker(new URL('./unwrap-worker.ts', import.meta.url));
  const t: UnwrapThread = { worker, pending: new Map() };
  worker.unref();
  worker.on('message', (r: UnwrapReply) => {
    const p = t.pending.get(r.id);
    if (!p) return;
    t.pending.delete(r.id);
    if (t.pending.size === 0) worker.unref();
    if ('error' in r)
      p.reject(
        Object.assign(new Error(r.error.message), r.error.code ? { code: r.error.code } : {}),
      );
    else p.resolve(r.plaintext);
  });
  const fail = (e: Error) => {
    if (thread === t) thread = undefined;
    for (const p of t.pending.values()) p.reject(e);
    t.pending.clear();
  };
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`the RSA unwrap thread exited with ${code}`)));
  return t;
}

/** `privateDecrypt` with PKCS#1 v1.5 padding (implicit rejection), in the unwrap thread. */
export function unwrapOffThread(key: KeyObject, ciphertext: Uint8Array): Promise<Uint8Array> {
  const t = (thread ??= start());
  const id = ++lastId;
  // A copy of only these bytes crosses, moved: a view's whole buffer would be cloned otherwise,
  // and moving the caller's own would detach it (a Buffer's `slice` shares its memory).
  const bytes = new Uint8Array(ciphertext);
  const request: UnwrapRequest = { id, key, ciphertext: bytes };
  return new Promise<Uint8Array>((resolve, reject) => {
    if (t.pending.size === 0) t.worker.ref();
    t.pending.set(id, { resolve, reject });
    t.worker.postMessage(request, [bytes.buffer]);
  });
}
