/**
 * PKCS#11 URIs (RFC 7512): how configuration names a token and a key in it, e.g.
 * `pkcs11:token=certpost;object=issuing-ca;id=%01%02?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=/etc/certpost/pin`.
 *
 * Grammar (RFC 7512 §2.3):
 *   pk11-URI   = "pkcs11:" pk11-path [ "?" pk11-query ]
 *   pk11-path  = [ pk11-pattr *( ";" pk11-pattr ) ]
 *   pk11-query = [ pk11-qattr *( "&" pk11-qattr ) ]
 * Values are percent-encoded UTF-8 (`id` is raw bytes). An attribute appears at most once.
 * Vendor attributes (`x-…`) are refused rather than ignored: one we do not understand might
 * narrow the match, and ignoring it could pick another key. `pin-value` is parsed (RFC 7512
 * §2.3 allows it) but {@link formatPkcs11Uri} never writes it: a URI this program prints
 * carries no PIN.
 */
import { HsmError } from './errors.ts';

/** Object classes of the `type` path attribute (RFC 7512 §2.3). */
export type Pkcs11ObjectType = 'public' | 'private' | 'cert' | 'secret-key' | 'data';

export interface Pkcs11Uri {
  /** Path attributes: which token… */
  readonly token?: string;
  readonly manufacturer?: string;
  readonly serial?: string;
  readonly model?: string;
  readonly slotId?: number;
  readonly slotDescription?: string;
  readonly slotManufacturer?: string;
  readonly libraryManufacturer?: string;
  readonly libraryDescription?: string;
  readonly libraryVersion?: string;
  /** …and which object in it (CKA_LABEL, CKA_ID, CKA_CLASS). */
  readonly object?: string;
  readonly id?: Uint8Array;
  readonly type?: Pkcs11ObjectType;
  /** Query attributes: the module to load and where the PIN comes from. */
  readonly modulePath?: string;
  readonly moduleName?: string;
  /** A file the PIN is read from (`file:` URI or plain path). */
  readonly pinSource?: string;
  /** The PIN itself. Accepted on input; never formatted. */
  readonly pinValue?: string;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const PATH_ATTRS: Readonly<Record<string, keyof Pkcs11Uri>> = {
  token: 'token',
  manufacturer: 'manufacturer',
  serial: 'serial',
  model: 'model',
  'slot-id': 'slotId',
  'slot-description': 'slotDescription',
  'slot-manufacturer': 'slotManufacturer',
  'library-manufacturer': 'libraryManufacturer',
  'library-description': 'libraryDescription',
  'library-version': 'libraryVersion',
  object: 'object',
  id: 'id',
  type: 'type',
};
const QUERY_ATTRS: Readonly<Record<string, keyof Pkcs11Uri>> = {
  'module-path': 'modulePath',
  'module-name': 'moduleName',
  'pin-source': 'pinSource',
  'pin-value': 'pinValue',
};
const TYPES = new Set<string>(['public', 'private', 'cert', 'secret-key', 'data']);

const bad = (detail: string) => new HsmError('ERR_HSM_INVALID_URI', detail);

/** Percent-decodes to bytes; `%` must be followed by two hex digits. */
function pctBytes(s: string, what: string): Uint8Array {
  if (/%(?![0-9a-fA-F]{2})/.test(s)) throw bad(`bad percent-encoding in ${what}`);
  const out: number[] = [];
  for (let i = 0; i < s.length;) {
    if (s[i] === '%') {
      out.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 3;
    } else {
      const cp = s.codePointAt(i)!;
      const ch = String.fromCodePoint(cp);
      out.push(...new TextEncoder().encode(ch));
      i += ch.length;
    }
  }
  return Uint8Array.from(out);
}

function pctText(s: string, what: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(pctBytes(s, what));
  } catch (e) {
    if (e instanceof HsmError) throw e;
    throw bad(`${what} is not UTF-8`);
  }
}

/**
 * Parses a PKCS#11 URI. Unknown or vendor attributes, repeated attributes, a bad `type`,
 * `slot-id` or percent-encoding are `ERR_HSM_INVALID_URI` (the message never repeats a PIN).
 */
export function parsePkcs11Uri(text: string): Pkcs11Uri {
  if (!/^pkcs11:/i.test(text)) throw bad('it must start with "pkcs11:"');
  const rest = text.slice('pkcs11:'.length);
  const q = rest.indexOf('?');
  const path = q < 0 ? rest : rest.slice(0, q);
  const query = q < 0 ? '' : rest.slice(q + 1);
  const out: Mutable<Pkcs11Uri> = {};
  const seen = new Set<string>();
  const take = (part: string, table: Readonly<Record<string, keyof Pkcs11Uri>>, where: string) => {
    if (part === '') return;
    const eq = part.indexOf('=');
    if (eq <= 0) throw bad(`"${where}" attribute without a name or value`);
    const name = part.slice(0, eq).toLowerCase();
    const raw = part.slice(eq + 1);
    if (seen.has(name)) throw bad(`the attribute "${name}" appears twice`);
    seen.add(name);
    const key = table[name];
    if (!key) throw bad(`unsupported ${where} attribute "${name}"`);
    switch (key) {
      case 'id':
        out.id = pctBytes(raw, 'id');
        return;
      case 'slotId': {
        if (!/^\d{1,20}$/.test(raw)) throw bad('slot-id must be a decimal number');
        out.slotId = Number(raw);
        return;
      }
      case 'type': {
        const t = pctText(raw, 'type');
        if (!TYPES.has(t)) throw bad(`type must be one of ${[...TYPES].join(', ')}`);
        out.type = t as Pkcs11ObjectType;
        return;
      }
      default:
        (out as Record<string, string>)[key] = pctText(raw, name);
    }
  };
  for (const part of path.split(';')) take(part, PATH_ATTRS, 'path');
  for (const part of query.split('&')) take(part, QUERY_ATTRS, 'query');
  return out;
}

/** Characters written as-is in values (RFC 7512 §2.3 pk11-pchar / pk11-qchar, minus ";&?"). */
const SAFE_PATH = /[A-Za-z0-9\-._~:[\]@!$'()*+,=]/;
const SAFE_QUERY = /[A-Za-z0-9\-._~:[\]@!$'()*+,=/|]/;

function pctEncode(value: string, safe: RegExp): string {
  let out = '';
  for (const ch of value) {
    if (safe.test(ch)) out += ch;
    else for (const b of new TextEncoder().encode(ch)) out += `%${hex2(b)}`;
  }
  return out;
}

const hex2 = (b: number) => b.toString(16).padStart(2, '0').toUpperCase();

/**
 * Formats a PKCS#11 URI in the attribute order of RFC 7512 §2.3's examples. `pin-value` is
 * never written. `id` is fully percent-encoded (`%01%AB`), the form RFC 7512 recommends.
 */
export function formatPkcs11Uri(uri: Pkcs11Uri): string {
  const path: string[] = [];
  const put = (name: string, v: string | undefined) => {
    if (v !== undefined) path.push(`${name}=${pctEncode(v, SAFE_PATH)}`);
  };
  put('library-manufacturer', uri.libraryManufacturer);
  put('library-description', uri.libraryDescription);
  put('library-version', uri.libraryVersion);
  put('slot-manufacturer', uri.slotManufacturer);
  put('slot-description', uri.slotDescription);
  if (uri.slotId !== undefined) path.push(`slot-id=${uri.slotId}`);
  put('manufacturer', uri.manufacturer);
  put('model', uri.model);
  put('serial', uri.serial);
  put('token', uri.token);
  put('object', uri.object);
  if (uri.id !== undefined) path.push(`id=${[...uri.id].map((b) => `%${hex2(b)}`).join('')}`);
  put('type', uri.type);
  const query: string[] = [];
  const q = (name: string, v: string | undefined) => {
    if (v !== undefined) query.push(`${name}=${pctEncode(v, SAFE_QUERY)}`);
  };
  q('module-name', uri.moduleName);
  q('module-path', uri.modulePath);
  q('pin-source', uri.pinSource);
  return `pkcs11:${path.join(';')}${query.length ? `?${query.join('&')}` : ''}`;
}
