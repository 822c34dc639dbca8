/**
 * Server-initiated sessions (the stand-in for WNS, device/push.ts): the server learns each
 * device's channel by a Get of `DMClient/Provider/<ProviderID>/Push/ChannelURI`, and when it
 * queued something for a device it POSTs an empty notification there; the device then opens a
 * session (Alert 1200). Without a channel, or when the notification fails, the device simply
 * gets its commands at its next scheduled poll.
 *
 * The channel is a URL the device chose, so the server only ever calls loopback addresses
 * (the stand-in runs on the same machine); anything else is ignored, never fetched, so a device
 * cannot make the server reach into the network for it.
 */
import { isLoopback } from '../util/loopback.ts';
import type { Command } from '../omadm/syncml.ts';
import type { DeviceRecord, DeviceStore } from '../store/types.ts';

/** Where the device's reported channel is kept in its info. */
export const CHANNEL_INFO = 'DMClient/Push/ChannelURI';

export function channelGet(providerId: string): Command {
  return {
    kind: 'Get',
    cmdId: '',
    items: [{ target: `./Vendor/MSFT/DMClient/Provider/${providerId}/Push/ChannelURI` }],
  };
}

/** True for an http(s) URL on a loopback address. */
export function isLoopbackChannel(url: string): boolean {
  try {
    const u = new URL(url);
    return (
      (u.protocol === 'http:' || u.protocol === 'https:') &&
      isLoopback(u.hostname.replace(/^\[|\]$/g, ''))
    );
  } catch {
    return false;
  }
}

export interface PushResult {
  readonly pushed: number;
  /** Devices without a usable channel: they get their commands at their next poll. */
  readonly waiting: number;
}

/** Notifies these devices (at most 16 at once, 5 s each); failures only mean "wait for the poll". */
export async function pushDevices(
  store: Pick<DeviceStore, 'getDevice'>,
  deviceIds: readonly string[],
): Promise<PushResult> {
  let pushed = 0;
  let waiting = 0;
  const queue = [...new Set(deviceIds)];
  const worker = async () => {
    for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
      const device: DeviceRecord | undefined = await store.getDevice(id);
      const channel = device?.info[CHANNEL_INFO];
      if (!device || device.unenrolledAt || !channel || !isLoopbackChannel(channel)) {
        waiting++;
        continue;
      }
      try {
        const res = await fetch(channel, { method: 'POST', signal: AbortSignal.timeout(5000) });
        await res.arrayBuffer();
        if (res.ok) pushed++;
        else waiting++;
      } catch {
        waiting++;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(16, queue.length) }, worker));
  return { pushed, waiting };
}
