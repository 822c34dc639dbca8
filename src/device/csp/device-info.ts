/**
 * ./DevInfo and ./DevDetail (OMA DM standard objects, omadm/ddf-std/): what the device tells a
 * server about itself. DevInfo goes to the server in every session's package 1 (MS-MDM §3.1.5.1);
 * DevDetail answers inventory Gets. Values are computed, never stored in the tree; the only
 * writable one is DevDetail/Ext/Microsoft/DeviceName (Replace renames the device).
 */
import { arch, hostname, release, totalmem, type } from 'node:os';
import pkg from '../../../package.json' with { type: 'json' };
import type { DeviceStateData } from '../state.ts';
import { STATUS, type CspHooks } from '../tree.ts';

/** What the OMA DM client calls itself (DevInfo/DmV, DevDetail/SwV): certpost's version. */
export const DM_VERSION = pkg.version;

/** Windows SYSTEM_INFO wProcessorArchitecture codes (DevDetail ProcessorArchitecture). */
const ARCH: Readonly<Record<string, string>> = { x64: '9', arm64: '12', ia32: '0', arm: '5' };

/** The DevInfo values for package 1, by node URI. */
export function devInfo(state: () => DeviceStateData): Record<string, string> {
  const s = state();
  return {
    './DevInfo/DevId': s.device.id,
    './DevInfo/Man': 'certpost',
    './DevInfo/Mod': 'certpost device agent',
    './DevInfo/DmV': DM_VERSION,
    './DevInfo/Lang': 'en-US',
  };
}

function values(state: () => DeviceStateData): Record<string, string> {
  const s = state();
  const ext = './DevDetail/Ext/Microsoft';
  return {
    ...devInfo(state),
    './DevDetail/DevTyp': 'certpost device agent',
    './DevDetail/OEM': 'certpost',
    './DevDetail/FwV': DM_VERSION,
    './DevDetail/SwV': DM_VERSION,
    './DevDetail/HwV': `${type()} ${release()} ${arch()}`,
    './DevDetail/LrgObj': 'false',
    './DevDetail/URI/MaxDepth': '32',
    './DevDetail/URI/MaxTotLen': '2048',
    './DevDetail/URI/MaxSegLen': '255',
    [`${ext}/DeviceName`]: s.device.name,
    [`${ext}/DNSComputerName`]: hostname(),
    [`${ext}/OSPlatform`]: type(),
    [`${ext}/ProcessorArchitecture`]: ARCH[arch()] ?? '65535',
    [`${ext}/LocalTime`]: new Date().toISOString(),
    [`${ext}/TotalRAM`]: String(Math.round(totalmem() / 2 ** 20)),
  };
}

const OWNED = /^\.\/Dev(Info|Detail)(\/|$)/;

export function deviceInfoHooks(state: () => DeviceStateData): CspHooks {
  return {
    read: (uri) => (OWNED.test(uri) ? values(state)[uri] : undefined),
    beforeWrite(uri, value) {
      if (uri !== './DevDetail/Ext/Microsoft/DeviceName') return undefined;
      const name = value.data?.trim() ?? '';
      if (name === '' || name.length > 255) return STATUS.badRequest;
      state().device.name = name;
      return undefined;
    },
    snapshot: () => state().device.name,
    restore(name) {
      state().device.name = name as string;
    },
  };
}
