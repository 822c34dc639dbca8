/**
 * SyncML DM 1.2 messages (OMA-TS-DM_RepPro, as MS-MDM §2.2 profiles it): a typed model, a
 * parser and a builder. Written here because npm has no SyncML library; XML is read by
 * {@link readXml} (our strict reader, xml-read.ts), in document order, because command order is
 * meaning (an Atomic's `Exec Enroll` must stay last, a Status refers to the command before it),
 * and written as text here, every value escaped.
 *
 * ```dtd
 * <!ELEMENT SyncML (SyncHdr, SyncBody)>
 * <!ELEMENT SyncHdr (VerDTD, VerProto, SessionID, MsgID, Target, Source, RespURI?, NoResp?, Cred?, Meta?)>
 * <!ELEMENT SyncBody ((Alert | Atomic | Copy | Delete | Exec | Get | Map | Put | Replace |
 *   Results | Search | Sequence | Status | Sync | Add)+, Final?)>
 * ```
 * Input from the network is hostile: a DOCTYPE (the door to XXE and entity expansion) is
 * refused outright, and size and nesting depth are capped before the XML parser runs.
 * Every failure is a {@link SyncMLError}; the session layer answers it with a SyncML Status
 * (or HTTP 400 when not even a header could be read), never a crash.
 */
import {
  cdataXml,
  escapeXml,
  guardXml,
  innerXml,
  readXml,
  wrapXml,
  type XmlElement,
} from './xml.ts';

export const SYNCML_NS = 'SYNCML:SYNCML1.2';
export const METINF_NS = 'syncml:metinf';
export const SYNCML_CONTENT_TYPE = 'application/vnd.syncml.dm+xml';

/**
 * Safety limits (MS-MDM suggests ~512 KB messages; real ones nest < 10 deep and hold an element
 * per 40-odd bytes, so a full megabyte of them some 25,000).
 */
export const LIMITS = { maxBytes: 1024 * 1024, maxDepth: 32, maxElements: 32_768 } as const;

export type SyncMLErrorCode =
  'ERR_SYNCML_MALFORMED' | 'ERR_SYNCML_LIMIT' | 'ERR_SYNCML_FORBIDDEN_DOCTYPE';

export class SyncMLError extends Error {
  readonly code: SyncMLErrorCode;
  constructor(code: SyncMLErrorCode, message: string) {
    super(message);
    this.code = code;
    this.name = 'SyncMLError';
  }
}

export interface Meta {
  readonly format?: string;
  readonly type?: string;
  readonly size?: string;
  readonly nextNonce?: string;
  readonly maxMsgSize?: string;
  readonly maxObjSize?: string;
}

export interface Item {
  readonly target?: string;
  readonly source?: string;
  readonly meta?: Meta;
  /** Text content; embedded XML (Format xml) is kept as its XML text. */
  readonly data?: string;
  readonly moreData?: boolean;
}

export interface Cred {
  readonly meta?: Meta;
  readonly data: string;
}

export interface SyncHdr {
  readonly sessionId: string;
  readonly msgId: string;
  /** LocURI of the receiver (server URL client→server; device id server→client). */
  readonly target: string;
  readonly source: string;
  readonly cred?: Cred;
  readonly meta?: Meta;
}

/** Item-carrying management commands. */
export type ItemCommandName = 'Add' | 'Replace' | 'Delete' | 'Get' | 'Exec' | 'Copy';

export type Command =
  | {
      readonly kind: ItemCommandName;
      readonly cmdId: string;
      readonly meta?: Meta;
      readonly items: readonly Item[];
    }
  | {
      readonly kind: 'Alert';
      readonly cmdId: string;
      readonly data: string;
      readonly items: readonly Item[];
    }
  | {
      readonly kind: 'Status';
      readonly cmdId: string;
      readonly msgRef: string;
      readonly cmdRef: string;
      readonly cmd: string;
      readonly targetRef?: readonly string[];
      readonly sourceRef?: readonly string[];
      readonly chal?: { readonly meta: Meta };
      /** The status code, e.g. `200`. */
      readonly data: string;
      readonly items?: readonly Item[];
    }
  | {
      readonly kind: 'Results';
      readonly cmdId: string;
      readonly msgRef?: string;
      readonly cmdRef: string;
      readonly meta?: Meta;
      readonly items: readonly Item[];
    }
  | {
      readonly kind: 'Atomic' | 'Sequence';
      readonly cmdId: string;
      readonly meta?: Meta;
      readonly commands: readonly Command[];
    }
  /** An element SyncBody does not allow here; kept so the receiver can answer it 400. */
  | { readonly kind: 'Unknown'; readonly name: string; readonly cmdId?: string };

export interface SyncMLMessage {
  readonly header: SyncHdr;
  readonly body: readonly Command[];
  /** `<Final/>`: the sender's package ends with this message (OMA DM 1.2 multi-message packages). */
  readonly final: boolean;
}

const ITEM_COMMANDS: ReadonlySet<string> = new Set([
  'Add',
  'Replace',
  'Delete',
  'Get',
  'Exec',
  'Copy',
]);

// Elements are matched by local name: SyncML's own (SYNCML:SYNCML1.2) and MetInf's
// (syncml:metinf) names do not collide, and senders differ in where they declare the latter.
const find = (e: XmlElement | undefined, tag: string) => e?.children.find((c) => c.name === tag);
const all = (e: XmlElement, tag: string) => e.children.filter((c) => c.name === tag);

/**
 * Text of an element: its character data with text trimmed and CDATA kept as it is, or its
 * content as XML text when it holds elements (embedded XML, Format xml).
 */
function textOf(e: XmlElement | undefined): string | undefined {
  if (!e) return undefined;
  if (e.children.length > 0) return innerXml(e).trim();
  let out = '';
  for (const c of e.content) if ('cdata' in c) out += c.cdata ? c.text : c.text.trim();
  return out;
}

function required(e: XmlElement, tag: string, where: string): string {
  const v = textOf(find(e, tag));
  if (v === undefined) throw new SyncMLError('ERR_SYNCML_MALFORMED', `${where}: missing ${tag}`);
  return v;
}

const locUri = (e: XmlElement | undefined): string | undefined => textOf(find(e, 'LocURI'));

const META_FIELDS = [
  ['Format', 'format'],
  ['Type', 'type'],
  ['Size', 'size'],
  ['NextNonce', 'nextNonce'],
  ['MaxMsgSize', 'maxMsgSize'],
  ['MaxObjSize', 'maxObjSize'],
] as const;

function parseMeta(e: XmlElement | undefined): Meta | undefined {
  if (!e) return undefined;
  const m: Record<string, string> = {};
  for (const [tag, key] of META_FIELDS) {
    const v = textOf(find(e, tag));
    if (v !== undefined) m[key] = v;
  }
  // An empty <Meta/> says nothing: no Meta, as the builder writes none for it (a parsed
  // message must build back to itself; found by the syncml fuzz target).
  return Object.keys(m).length > 0 ? m : undefined;
}

function parseItem(e: XmlElement): Item {
  const target = locUri(find(e, 'Target'));
  const source = locUri(find(e, 'Source'));
  const meta = parseMeta(find(e, 'Meta'));
  const data = textOf(find(e, 'Data'));
  return {
    ...(target !== undefined ? { target } : {}),
    ...(source !== undefined ? { source } : {}),
    ...(meta ? { meta } : {}),
    ...(data !== undefined ? { data } : {}),
    ...(find(e, 'MoreData') ? { moreData: true } : {}),
  };
}

/** Elements of a command that are not commands inside an Atomic or Sequence. */
const CONTAINER_FIELDS: ReadonlySet<string> = new Set(['CmdID', 'Meta', 'NoResp']);

function parseCommand(e: XmlElement, inAtomic: boolean): Command {
  const tag = e.name;
  const cmdId = textOf(find(e, 'CmdID'));
  const items = () => all(e, 'Item').map(parseItem);
  const meta = parseMeta(find(e, 'Meta'));
  if (ITEM_COMMANDS.has(tag)) {
    return {
      kind: tag as ItemCommandName,
      cmdId: cmdId ?? '',
      ...(meta ? { meta } : {}),
      items: items(),
    };
  }
  switch (tag) {
    case 'Alert':
      return {
        kind: 'Alert',
        cmdId: cmdId ?? '',
        data: required(e, 'Data', 'Alert'),
        items: items(),
      };
    case 'Status': {
      const chal = find(e, 'Chal');
      const targetRef = all(e, 'TargetRef').map((t) => textOf(t) ?? '');
      const sourceRef = all(e, 'SourceRef').map((t) => textOf(t) ?? '');
      const its = items();
      return {
        kind: 'Status',
        cmdId: cmdId ?? '',
        msgRef: required(e, 'MsgRef', 'Status'),
        cmdRef: required(e, 'CmdRef', 'Status'),
        cmd: required(e, 'Cmd', 'Status'),
        ...(targetRef.length ? { targetRef } : {}),
        ...(sourceRef.length ? { sourceRef } : {}),
        ...(chal ? { chal: { meta: parseMeta(find(chal, 'Meta')) ?? {} } } : {}),
        data: required(e, 'Data', 'Status'),
        ...(its.length ? { items: its } : {}),
      };
    }
    case 'Results': {
      const msgRef = textOf(find(e, 'MsgRef'));
      return {
        kind: 'Results',
        cmdId: cmdId ?? '',
        ...(msgRef !== undefined ? { msgRef } : {}),
        cmdRef: required(e, 'CmdRef', 'Results'),
        ...(meta ? { meta } : {}),
        items: items(),
      };
    }
    case 'Atomic':
    case 'Sequence':
      if (inAtomic && tag === 'Atomic')
        return { kind: 'Unknown', name: tag, ...(cmdId !== undefined ? { cmdId } : {}) };
      return {
        kind: tag,
        cmdId: cmdId ?? '',
        ...(meta ? { meta } : {}),
        commands: e.children
          .filter((c) => !CONTAINER_FIELDS.has(c.name))
          .map((c) => parseCommand(c, inAtomic || tag === 'Atomic')),
      };
    default:
      return { kind: 'Unknown', name: tag, ...(cmdId !== undefined ? { cmdId } : {}) };
  }
}

/** Parses one SyncML message. Throws {@link SyncMLError} for anything that is not one. */
export function parseSyncML(
  input: string | Uint8Array,
  limits: { maxBytes?: number; maxDepth?: number; maxElements?: number } = {},
): SyncMLMessage {
  const xml = guardXml(
    input,
    {
      maxBytes: limits.maxBytes ?? LIMITS.maxBytes,
      maxDepth: limits.maxDepth ?? LIMITS.maxDepth,
      maxElements: limits.maxElements ?? LIMITS.maxElements,
    },
    (kind, message) =>
      new SyncMLError(
        kind === 'limit' ? 'ERR_SYNCML_LIMIT' : 'ERR_SYNCML_FORBIDDEN_DOCTYPE',
        message,
      ),
  );
  const root = readXml(xml, (m) => new SyncMLError('ERR_SYNCML_MALFORMED', m));
  if (root.name !== 'SyncML') throw new SyncMLError('ERR_SYNCML_MALFORMED', 'no SyncML element');
  const h = find(root, 'SyncHdr');
  const body = find(root, 'SyncBody');
  if (!h || !body)
    throw new SyncMLError('ERR_SYNCML_MALFORMED', 'SyncML needs SyncHdr and SyncBody');
  const verProto = textOf(find(h, 'VerProto'));
  if (verProto !== undefined && verProto !== 'DM/1.2')
    throw new SyncMLError('ERR_SYNCML_MALFORMED', `unsupported VerProto ${verProto}`);
  const target = locUri(find(h, 'Target'));
  const source = locUri(find(h, 'Source'));
  if (target === undefined || source === undefined)
    throw new SyncMLError('ERR_SYNCML_MALFORMED', 'SyncHdr needs Target and Source LocURIs');
  const credNode = find(h, 'Cred');
  const credMeta = credNode ? parseMeta(find(credNode, 'Meta')) : undefined;
  const meta = parseMeta(find(h, 'Meta'));
  const header: SyncHdr = {
    sessionId: required(h, 'SessionID', 'SyncHdr'),
    msgId: required(h, 'MsgID', 'SyncHdr'),
    target,
    source,
    ...(credNode
      ? {
          cred: {
            ...(credMeta ? { meta: credMeta } : {}),
            data: required(credNode, 'Data', 'Cred'),
          },
        }
      : {}),
    ...(meta ? { meta } : {}),
  };
  return {
    header,
    body: body.children.filter((c) => c.name !== 'Final').map((c) => parseCommand(c, false)),
    final: Boolean(find(body, 'Final')),
  };
}

// ---------------------------------------------------------------------------------------------
// Building. Elements follow the DTD order (MS-MDM: documents need not be validated, but must
// keep DTD order); Meta children carry xmlns="syncml:metinf" as Windows sends them. Written as
// text directly, every value escaped (escapeXml): the server measures each command it queues
// against the message budget, so building is on the hot path of every session.

/** `<tag>text</tag>`, text escaped; `<tag/>` when empty. */
const text = (tag: string, value: string, attrs = ''): string =>
  wrapXml(tag, escapeXml(value), attrs);

const METINF = ` xmlns="${METINF_NS}"`;

function metaXml(m: Meta | undefined): string {
  if (!m) return '';
  let parts = '';
  if (m.format !== undefined) parts += text('Format', m.format, METINF);
  if (m.type !== undefined) parts += text('Type', m.type, METINF);
  if (m.size !== undefined) parts += text('Size', m.size, METINF);
  if (m.nextNonce !== undefined) parts += text('NextNonce', m.nextNonce, METINF);
  if (m.maxMsgSize !== undefined) parts += text('MaxMsgSize', m.maxMsgSize, METINF);
  if (m.maxObjSize !== undefined) parts += text('MaxObjSize', m.maxObjSize, METINF);
  return parts === '' ? '' : `<Meta>${parts}</Meta>`;
}

function itemXml(i: Item): string {
  let inner = '';
  if (i.target !== undefined) inner += `<Target>${text('LocURI', i.target)}</Target>`;
  if (i.source !== undefined) inner += `<Source>${text('LocURI', i.source)}</Source>`;
  inner += metaXml(i.meta);
  if (i.data !== undefined)
    inner += i.meta?.format === 'xml' ? `<Data>${cdataXml(i.data)}</Data>` : text('Data', i.data);
  if (i.moreData) inner += '<MoreData/>';
  return wrapXml('Item', inner);
}

const itemsXml = (items: readonly Item[] | undefined): string =>
  items ? items.map(itemXml).join('') : '';

/** One command as SyncML text (what it adds to a message's size). */
export function commandXml(c: Command): string {
  switch (c.kind) {
    case 'Alert':
      return `<Alert>${text('CmdID', c.cmdId)}${text('Data', c.data)}${itemsXml(c.items)}</Alert>`;
    case 'Status':
      return (
        `<Status>${text('CmdID', c.cmdId)}${text('MsgRef', c.msgRef)}${text('CmdRef', c.cmdRef)}` +
        text('Cmd', c.cmd) +
        (c.targetRef ?? []).map((t) => text('TargetRef', t)).join('') +
        (c.sourceRef ?? []).map((t) => text('SourceRef', t)).join('') +
        (c.chal ? wrapXml('Chal', metaXml(c.chal.meta)) : '') +
        `${text('Data', c.data)}${itemsXml(c.items)}</Status>`
      );
    case 'Results':
      return (
        `<Results>${text('CmdID', c.cmdId)}` +
        (c.msgRef !== undefined ? text('MsgRef', c.msgRef) : '') +
        `${text('CmdRef', c.cmdRef)}${metaXml(c.meta)}${itemsXml(c.items)}</Results>`
      );
    case 'Atomic':
    case 'Sequence':
      return `<${c.kind}>${text('CmdID', c.cmdId)}${metaXml(c.meta)}${c.commands.map(commandXml).join('')}</${c.kind}>`;
    case 'Unknown':
      throw new SyncMLError('ERR_SYNCML_MALFORMED', `cannot build an unknown command ${c.name}`);
    default:
      return `<${c.kind}>${text('CmdID', c.cmdId)}${metaXml(c.meta)}${itemsXml(c.items)}</${c.kind}>`;
  }
}

/** The message's opening through `<SyncBody>`. */
function headXml(h: SyncHdr): string {
  return (
    `<SyncML xmlns="${SYNCML_NS}"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto>` +
    `${text('SessionID', h.sessionId)}${text('MsgID', h.msgId)}` +
    `<Target>${text('LocURI', h.target)}</Target><Source>${text('LocURI', h.source)}</Source>` +
    (h.cred ? `<Cred>${metaXml(h.cred.meta)}${text('Data', h.cred.data)}</Cred>` : '') +
    `${metaXml(h.meta)}</SyncHdr>`
  );
}

/** Serialises a message (UTF-8 text, no XML declaration, as Windows' client and Fleet send). */
export function buildSyncML(m: SyncMLMessage): string {
  const body = m.body.map(commandXml).join('') + (m.final ? '<Final/>' : '');
  return `${headXml(m.header)}${wrapXml('SyncBody', body)}</SyncML>`;
}
