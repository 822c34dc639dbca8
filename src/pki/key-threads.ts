/**
 * Private-key operations of software keys off the event loop, in a few worker threads of our
 * own. Node has no asynchronous `privateDecrypt`, and a SCEP server unwraps a content key for
 * every PKIOperation: on the main thread that is a third of a millisecond during which no other
 * request moves. Signatures could use libuv's pool (the callback form of `crypto.sign`), but
 * measured on the SCEP replay (2 cores) they cost the main thread more there: each job wakes a
 * sleeping pool thread and comes back through its own callback, where a busy key thread takes
 * the next message from its queue; main-thread CPU per enrollment 0.95 → 0.85 ms.
 *
 * Threads: one per core but one (the main thread keeps its own), at most 4, at least 1,
 * started on first use; a request goes to an idle thread, or starts one, or waits behind the
 * fewest. A thread keeps the process alive only while it has a request pending; if it dies,
 * its pending requests reject and the next request starts a new one.
 *
 * Contract: results are exactly those of `crypto.sign(hash, data, key)` and of
 * `privateDecrypt({ key, padding: RSA_PKCS1_PADDING }, data)` (implicit rejection included: a
 * bad padding yields OpenSSL's synthetic message, not an error); an error either throws
 * rejects the promise with the same message and `code`. Only the data's own bytes cross
 * (copied, then moved), never the caller's buffer.
 */
import type { KeyObject } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { KeyOperation, KeyReply, KeyRequest } from './key-worker.ts';

interface Pending {
  resolve(result: Uint8Array): void;
  reject(e: Error): void;
}

interface KeyThread {
  readonly worker: Worker;
  readonly pending: Map<number, Pending>;
}

const SIZE = Math.min(4, Math.max(1, availableParallelism() - 1));
const threads: KeyThread[] = [];
let lastId = 0;

function start(): KeyThread {
  const worker = new Worker(new URL('./key-worker.ts', import.meta.url));
  const t: KeyThread = { worker, pending: new Map() };
  worker.unref();
  worker.on('message', (r: KeyReply) => {
    const p = t.pending.get(r.id);
    if (!p) return;
    t.pending.delete(r.id);
    if (t.pending.size === 0) worker.unref();
    if ('error' in r)
      p.reject(
        Object.assign(new Error(r.error.message), r.error.code ? { code: r.error.code } : {}),
      );
    else p.resolve(r.result);
  });
  const fail = (e: Error) => {
    const i = threads.indexOf(t);
    if (i >= 0) threads.splice(i, 1);
    for (const p of t.pending.values()) p.reject(e);
    t.pending.clear();
  };
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`a private-key thread exited with ${code}`)));
  threads.push(t);
  return t;
}

/** An idle thread, else a new one while fewer than SIZE run, else the least busy. */
function pick(): KeyThread {
  let best: KeyThread | undefined;
  for (const t of threads) if (!best || t.pending.size < best.pending.size) best = t;
  if (best && (best.pending.size === 0 || threads.length >= SIZE)) return best;
  return start();
}

function post(operation: KeyOperation, data: Uint8Array): Promise<Uint8Array> {
  const t = pick();
  const id = ++lastId;
  // A copy of only these bytes crosses, moved: a view's whole buffer would be cloned otherwise,
  // and moving the caller's own would detach it (a Buffer's `slice` shares its memory).
  const bytes = new Uint8Array(data);
  return new Promise<Uint8Array>((resolve, reject) => {
    if (t.pending.size === 0) t.worker.ref();
    t.pending.set(id, { resolve, reject });
    const request: KeyRequest = { ...operation, id, data: bytes };
    t.worker.postMessage(request, [bytes.buffer]);
  });
}

/** `crypto.sign(hash, data, key)` in a private-key thread. */
export function signInThread(
  key: KeyObject,
  data: Uint8Array,
  hash: string | null,
): Promise<Uint8Array> {
  return post({ op: 'sign', key, hash }, data);
}

/** `privateDecrypt` with PKCS#1 v1.5 padding (implicit rejection) in a private-key thread. */
export function decryptInThread(key: KeyObject, ciphertext: Uint8Array): Promise<Uint8Array> {
  return post({ op: 'decrypt', key }, ciphertext);
}
