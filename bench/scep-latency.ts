/**
 * SCEP latency under load (issue 7: "under the SCEP benchmark load, p99 latency and error rate
 * printed by `npm run bench`"). The shared replay tool times the whole batch only, so this pass
 * times every request itself: our SCEP client builds N PKCSReq messages (RSA-2048, each its own
 * CN and transactionID) against the server's real GetCACert, nothing is sent while building, and
 * then the messages are POSTed C at a time with one keep-alive connection per slot. Each answer
 * counts as a success only when it is a CertRep with pkiStatus SUCCESS.
 *
 * Building is not timed; the keys come from a small pool (a CSR per message, the key reused),
 * as the replay tool's messages would cost 600 key generations otherwise.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import {
  createScepClient,
  fetchTransport,
  type ScepTransport,
  type ScepTransportRequest,
} from '../src/scep/client.ts';
import { parsePkiMessage, PkiStatus } from '../src/scep/message.ts';
import { percentile } from '../src/util/stats.ts';

const KEY_POOL = 8;

/** Thrown by the capturing transport once it holds a PKIOperation body: nothing is sent. */
class Captured extends Error {}

/** N PKCSReq messages for the SCEP server at `url`, built with our client, not sent. */
export async function buildRequests(
  url: string,
  challenge: string,
  n: number,
): Promise<Uint8Array[]> {
  const forward = fetchTransport(url);
  const captured: Uint8Array[] = [];
  const transport: ScepTransport = async (req: ScepTransportRequest) => {
    if (req.operation !== 'PKIOperation') return forward(req);
    captured.push(req.body!);
    throw new Captured();
  };
  const client = createScepClient(transport);
  const keys = Array.from(
    { length: KEY_POOL },
    () => generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
  );
  for (let i = 0; i < n; i++) {
    await client
      .enroll({
        subject: `CN=latency-${i}-${randomBytes(4).toString('hex')}`,
        key: keys[i % KEY_POOL]!,
        challenge,
        transactionId: randomBytes(16).toString('hex'),
      })
      .catch((e: unknown) => {
        if (!(e instanceof Error) || !(e.cause instanceof Captured)) throw e;
      });
  }
  if (captured.length !== n) throw new Error(`built ${captured.length} of ${n} requests`);
  return captured;
}

export interface LatencyResult {
  readonly ok: number;
  readonly failed: number;
  readonly rate: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
}

function post(agent: Agent, url: URL, body: Uint8Array): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/x-pki-message', 'content-length': body.length },
        timeout: 60_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

function succeeded(status: number, body: Buffer): boolean {
  if (status !== 200) return false;
  try {
    return parsePkiMessage(body).pkiStatus === PkiStatus.SUCCESS;
  } catch {
    return false;
  }
}

/** POSTs `messages` to `url` (`…/scep`), `concurrency` at a time, timing each request. */
export async function replayTimed(
  url: string,
  messages: readonly Uint8Array[],
  concurrency: number,
): Promise<LatencyResult> {
  const target = new URL(`${url}?operation=PKIOperation`);
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const times: number[] = [];
  let next = 0;
  let ok = 0;
  let failed = 0;
  const slot = async (): Promise<void> => {
    for (let i = next++; i < messages.length; i = next++) {
      const t0 = performance.now();
      try {
        const res = await post(agent, target, messages[i]!);
        times.push(performance.now() - t0);
        if (succeeded(res.status, res.body)) ok++;
        else failed++;
      } catch {
        times.push(performance.now() - t0);
        failed++;
      }
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, slot));
  const seconds = (performance.now() - t0) / 1000;
  agent.destroy();
  times.sort((a, b) => a - b);
  return {
    ok,
    failed,
    rate: ok / seconds,
    p50: percentile(times, 50),
    p95: percentile(times, 95),
    p99: percentile(times, 99),
    max: times.at(-1) ?? NaN,
  };
}
