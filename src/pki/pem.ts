/**
 * PEM (RFC 7468): finding blocks in text and writing them.
 *
 * Real files carry text around the blocks (OpenSSL's `Bag Attributes`, `subject=` lines,
 * comments), mix CRLF and LF, and sometimes indent the base64. The reader is lenient in what
 * surrounds a block and strict inside it: the base64 must decode completely, and a BEGIN
 * without a matching END is a truncated file.
 */
import { PkiError } from './errors.ts';

export interface PemBlock {
  /** The label between `BEGIN ` and the dashes, e.g. `CERTIFICATE`. */
  readonly label: string;
  /** RFC 1421 headers (legacy encrypted keys: `Proc-Type`, `DEK-Info`). */
  readonly headers: Readonly<Record<string, string>>;
  readonly der: Uint8Array;
  /** The block's text from BEGIN to END inclusive, LF line ends (Node's key parser wants it). */
  readonly text: string;
}

const BEGIN = /-----BEGIN ([A-Z0-9 #]+)-----/g;

/**
 * Most blocks one PEM text may hold: the biggest real bundles (the system CA lists) have a few
 * hundred certificates, and each block is decoded and parsed, so more is `ERR_PKI_LIMIT`.
 */
export const MAX_PEM_BLOCKS = 1000;

/** True when the bytes contain a PEM BEGIN line (a cheap check for format sniffing). */
export function looksLikePem(bytes: Uint8Array): boolean {
  const head = Buffer.from(
    bytes.buffer,
    bytes.byteOffset,
    Math.min(bytes.byteLength, 1 << 20),
  ).toString('latin1');
  return head.includes('-----BEGIN ');
}

/**
 * Every PEM block in `input`, in order. Throws `ERR_PKI_TRUNCATED` for a BEGIN without END and
 * `ERR_PKI_LIMIT` past {@link MAX_PEM_BLOCKS} blocks.
 */
export function decodePem(input: string | Uint8Array): PemBlock[] {
  const text =
    typeof input === 'string'
      ? input
      : Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('latin1');
  const blocks: PemBlock[] = [];
  BEGIN.lastIndex = 0;
  for (let m = BEGIN.exec(text); m; m = BEGIN.exec(text)) {
    const label = m[1]!;
    if (blocks.length === MAX_PEM_BLOCKS)
      throw new PkiError('ERR_PKI_LIMIT', `more than ${MAX_PEM_BLOCKS} PEM blocks`);
    const endLine = `-----END ${label}-----`;
    const bodyStart = m.index + m[0].length;
    const end = text.indexOf(endLine, bodyStart);
    if (end < 0) throw new PkiError('ERR_PKI_TRUNCATED', `PEM block "${label}" has no END line`);
    const lines = text
      .slice(bodyStart, end)
      .split(/\r?\n|\r/)
      .map((l) => l.trim());
    const headers: Record<string, string> = {};
    let i = 0;
    while (i < lines.length && lines[i] === '') i++;
    // RFC 1421 headers: "Name: value" lines, then a blank line.
    while (i < lines.length && /^[A-Za-z-]+:/.test(lines[i]!)) {
      const [k, ...v] = lines[i]!.split(':');
      headers[k!.trim()] = v.join(':').trim();
      i++;
    }
    const b64 = lines.slice(i).join('');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 === 1) {
      throw new PkiError('ERR_PKI_MALFORMED', `PEM block "${label}" has invalid base64`);
    }
    const der = new Uint8Array(Buffer.from(b64, 'base64'));
    if (der.length === 0) throw new PkiError('ERR_PKI_EMPTY', `PEM block "${label}" is empty`);
    const headerText = Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\n`)
      .join('');
    blocks.push({
      label,
      headers,
      der,
      text: `-----BEGIN ${label}-----\n${headerText}${headerText ? '\n' : ''}${wrap(b64)}-----END ${label}-----\n`,
    });
    BEGIN.lastIndex = end + endLine.length;
  }
  return blocks;
}

function wrap(b64: string): string {
  let out = '';
  for (let i = 0; i < b64.length; i += 64) out += `${b64.slice(i, i + 64)}\n`;
  return out;
}

/** One PEM block with 64-column base64 and LF line ends (RFC 7468 §2). */
export function encodePem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  return `-----BEGIN ${label}-----\n${wrap(b64)}-----END ${label}-----\n`;
}

/** Certificates as one PEM bundle (`CERTIFICATE` blocks in the given order), as .pem files carry them. */
export function encodePemCertificates(certs: readonly { readonly der: Uint8Array }[]): string {
  return certs.map((c) => encodePem('CERTIFICATE', c.der)).join('');
}
