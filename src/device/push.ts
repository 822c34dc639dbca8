/**
 * Server-initiated sessions: the stand-in for WNS push (MS-MDM §3.1.5: a notification makes the
 * device open a session with Alert 1200). The agent listens on loopback at a URL with a random
 * token in its path and reports that URL as its channel
 * (`./Vendor/MSFT/DMClient/Provider/<ProviderID>/Push/ChannelURI`, DMClient CSP); the server
 * POSTs to it when it has something for the device. A notification carries nothing: it only
 * makes the device run a session with its own credentials, so a forged one costs a session.
 *
 * Notifications arriving while a session runs are coalesced into one more session after it.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DeviceAgent } from './agent.ts';
import type { CspHooks } from './tree.ts';

export interface PushListener {
  /** The channel URI the device reports. */
  readonly url: string;
  /** Sessions run because of a notification so far. */
  readonly sessions: () => number;
  close(): Promise<void>;
}

/**
 * Starts listening for notifications on `host:port` (loopback; port 0 picks one) and records
 * the channel in the device state. `onError` hears about sessions that failed.
 */
export async function listenForPush(
  agent: DeviceAgent,
  o: { host?: string; port?: number; onError?: (e: unknown) => void } = {},
): Promise<PushListener> {
  const token = randomBytes(18).toString('base64url');
  const expected = Buffer.from(`/push/${token}`);
  let running: Promise<void> | undefined;
  let again = false;
  let count = 0;

  const session = (): void => {
    if (running) {
      again = true;
      return;
    }
    running = (async () => {
      do {
        again = false;
        try {
          await agent.sync({ alert: '1200' });
          count++;
        } catch (e) {
          o.onError?.(e);
        }
      } while (again);
    })().finally(() => {
      running = undefined;
    });
  };

  const server: Server = createServer((req, res) => {
    const path = Buffer.from(req.url ?? '');
    const ok =
      req.method === 'POST' && path.length === expected.length && timingSafeEqual(path, expected);
    req.resume();
    res.writeHead(ok ? 202 : 404).end();
    if (ok) session();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, o.host ?? '127.0.0.1', resolve);
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}/push/${token}`;
  agent.store.data.push = { channelUri: url };
  await agent.save();
  return {
    url,
    sessions: () => count,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await running;
      delete agent.store.data.push;
      await agent.save();
    },
  };
}

const CHANNEL =
  /^\.\/(?:Device\/)?Vendor\/MSFT\/DMClient\/Provider\/[^/]+\/Push\/(ChannelURI|Status)$/;

/**
 * DMClient Push nodes: ChannelURI is the listener's URL; Status is 0 while a channel is open
 * and 1 otherwise (certpost's meaning; Windows reports WNS channel states).
 */
export function pushHooks(agent: () => DeviceAgent): CspHooks {
  return {
    read(uri) {
      const m = CHANNEL.exec(uri);
      if (!m) return undefined;
      const channel = agent().store.data.push?.channelUri;
      if (m[1] === 'Status') return channel ? '0' : '1';
      return channel;
    },
  };
}
