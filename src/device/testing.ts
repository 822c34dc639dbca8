/**
 * Helpers for tests that talk to a device as an MDM server would: build a server message
 * around command XML, and read the statuses and results of the reply.
 */
import { parseSyncML, type Command } from '../omadm/syncml.ts';

let session = 0;

/** A server → device SyncML message around `body` (commands as XML). */
export function serverMessage(
  body: string,
  o: { sessionId?: string; msgId?: number } = {},
): string {
  return `<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto><SessionID>${o.sessionId ?? String(++session)}</SessionID><MsgID>${o.msgId ?? 1}</MsgID><Target><LocURI>device</LocURI></Target><Source><LocURI>https://mdm.example.test/ManagementServer/MDM.svc</LocURI></Source></SyncHdr><SyncBody>${body}<Final/></SyncBody></SyncML>`;
}

let cmdId = 100;
const id = () => String(++cmdId);
const meta = (format?: string) =>
  format ? `<Meta><Format xmlns="syncml:metinf">${format}</Format></Meta>` : '';
const xmlText = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

export const cmd = {
  add: (uri: string, data?: string, format?: string) =>
    `<Add><CmdID>${id()}</CmdID><Item><Target><LocURI>${uri}</LocURI></Target>${meta(format)}${data !== undefined ? `<Data>${xmlText(data)}</Data>` : ''}</Item></Add>`,
  replace: (uri: string, data: string, format?: string) =>
    `<Replace><CmdID>${id()}</CmdID><Item><Target><LocURI>${uri}</LocURI></Target>${meta(format)}<Data>${xmlText(data)}</Data></Item></Replace>`,
  get: (uri: string) =>
    `<Get><CmdID>${id()}</CmdID><Item><Target><LocURI>${uri}</LocURI></Target></Item></Get>`,
  delete: (uri: string) =>
    `<Delete><CmdID>${id()}</CmdID><Item><Target><LocURI>${uri}</LocURI></Target></Item></Delete>`,
  exec: (uri: string) =>
    `<Exec><CmdID>${id()}</CmdID><Item><Target><LocURI>${uri}</LocURI></Target></Item></Exec>`,
  atomic: (...children: string[]) => `<Atomic><CmdID>${id()}</CmdID>${children.join('')}</Atomic>`,
};

export interface ReplySummary {
  /** Status codes of the commands (not the SyncHdr), in order, as `Cmd=code`. */
  readonly statuses: string[];
  /** Results data by source URI. */
  readonly results: Map<string, string | undefined>;
}

/** The statuses and results of a device reply. */
export function summarise(reply: string | undefined): ReplySummary {
  if (reply === undefined) throw new Error('the device did not reply');
  const m = parseSyncML(reply);
  const statuses: string[] = [];
  const results = new Map<string, string | undefined>();
  const walk = (cs: readonly Command[]) => {
    for (const c of cs) {
      if (c.kind === 'Status' && c.cmd !== 'SyncHdr') statuses.push(`${c.cmd}=${c.data}`);
      if (c.kind === 'Results') for (const i of c.items) results.set(i.source ?? '', i.data);
    }
  };
  walk(m.body);
  return { statuses, results };
}
