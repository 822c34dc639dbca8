/**
 * The installer's inputs (design.md §1, the web and email channels): a file, an http(s) URL,
 * or an Internet message, turned into the byte sources the installer reads.
 *
 * - What an input is comes from its bytes, never its name: a certificate format
 *   ({@link sniffPkiFormat}) is one source; otherwise a message ({@link looksLikeMessage}) gives
 *   one source per certificate attachment (mail/eml.ts); anything else is one source that the
 *   reader will refuse (not a certificate).
 * - A URL is downloaded with the device's trust (http.ts: the device Root store and the public
 *   roots): an HTTPS server whose certificate neither trusts is `ERR_DEVICE_DOWNLOAD_UNTRUSTED`.
 *   Plain `http:` works but comes with a warning: anyone on the path could have changed the
 *   bytes, so the thumbprints are what to check. Redirects are followed up to `maxRedirects`,
 *   never from https to http. Size (`maxBytes`) and time (`timeoutMs`, per request) are
 *   bounded; a failure is `ERR_DEVICE_DOWNLOAD`, an oversized input
 *   `ERR_DEVICE_INPUT_TOO_LARGE` (files too, checked before they are read).
 */
import { readFile, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import {
  readCertificateAttachments,
  type SkippedAttachment,
  looksLikeMessage,
} from '../mail/eml.ts';
import { sniffPkiFormat } from '../pki/read.ts';
import { DeviceError, isDeviceError } from './errors.ts';
import { httpRequestBytes } from './http.ts';

export interface InstallSource {
  /** For people: the path, the URL, or `message.eml › alice.pfx` for an attachment. */
  readonly name: string;
  readonly bytes: Uint8Array;
  /** A file name, only a hint for the reader's notes (never what decides the format). */
  readonly filename?: string;
}

export interface LoadedInput {
  readonly sources: readonly InstallSource[];
  readonly warnings: readonly string[];
  /** When the input was a message: its subject and the attachments left out, and why. */
  readonly message?: {
    readonly subject?: string;
    readonly from?: string;
    readonly skipped: readonly SkippedAttachment[];
  };
}

export interface InputOptions {
  /** PEM roots the device trusts for HTTPS besides the public ones (its Root store). */
  readonly trustedRootsPem: () => readonly string[];
  /** Largest input (file, download or message), 25 MiB by default. */
  readonly maxBytes?: number;
  /** Per request, 30 s by default. */
  readonly timeoutMs?: number;
  /** 5 by default. */
  readonly maxRedirects?: number;
}

const DEFAULTS = { maxBytes: 25 << 20, timeoutMs: 30_000, maxRedirects: 5 };

/** Node's TLS verification failures (the cause's `code`): the server is not trusted. */
const TLS_UNTRUSTED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REVOKED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** True for an `http:` or `https:` URL (anything else is taken as a file path). */
export function isUrl(input: string): boolean {
  return /^https?:\/\//i.test(input);
}

/**
 * The file name a URL's last segment stands for, percent-decoded; kept as it is when an escape
 * is malformed (`%zz`): the server chose it (a redirect's Location), and it is only a hint.
 */
function fileNameOf(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** Loads one input (see the module comment). */
export async function loadInstallInput(input: string, o: InputOptions): Promise<LoadedInput> {
  const limits = { ...DEFAULTS, ...o };
  if (isUrl(input)) {
    const { bytes, url, warnings } = await download(input, limits);
    const last = fileNameOf(new URL(url).pathname.split('/').pop() ?? '');
    return split(input, bytes, last || undefined, warnings, limits.maxBytes);
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(input))
    throw new DeviceError('ERR_DEVICE_BAD_PARAMETER', `${input}: only http and https URLs`);
  const size = (await stat(input)).size;
  if (size > limits.maxBytes)
    throw new DeviceError(
      'ERR_DEVICE_INPUT_TOO_LARGE',
      `${input} is ${size} bytes (the installer reads at most ${limits.maxBytes})`,
    );
  const bytes = new Uint8Array(await readFile(input));
  return split(input, bytes, basename(input), [], limits.maxBytes);
}

async function split(
  name: string,
  bytes: Uint8Array,
  filename: string | undefined,
  warnings: readonly string[],
  maxBytes: number,
): Promise<LoadedInput> {
  const whole = { name, bytes, ...(filename !== undefined ? { filename } : {}) };
  if (sniffPkiFormat(bytes) !== null || !looksLikeMessage(bytes))
    return { sources: [whole], warnings };
  const m = await readCertificateAttachments(bytes, { maxMessageBytes: maxBytes });
  return {
    sources: m.attachments.map((a) => ({
      name: `${name} › ${a.filename}`,
      bytes: a.content,
      filename: a.filename,
    })),
    warnings,
    message: {
      ...(m.subject !== undefined ? { subject: m.subject } : {}),
      ...(m.from !== undefined ? { from: m.from } : {}),
      skipped: m.skipped,
    },
  };
}

async function download(
  input: string,
  o: typeof DEFAULTS & InputOptions,
): Promise<{ bytes: Uint8Array; url: string; warnings: string[] }> {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new DeviceError('ERR_DEVICE_BAD_PARAMETER', `${input} is not a valid URL`);
  }
  const warnings: string[] = [];
  for (let redirects = 0; ; redirects++) {
    if (url.protocol === 'http:' && warnings.length === 0)
      warnings.push(
        `${url.href} is plain HTTP: anyone on the network path could have replaced what was downloaded; compare the thumbprints with a trusted source before installing`,
      );
    let res;
    try {
      res = await httpRequestBytes(url.href, {
        method: 'GET',
        headers: { accept: '*/*' },
        ca: o.trustedRootsPem(),
        timeoutMs: o.timeoutMs,
        maxBytes: o.maxBytes,
        failure: 'ERR_DEVICE_DOWNLOAD',
        tooLarge: 'ERR_DEVICE_INPUT_TOO_LARGE',
      });
    } catch (e) {
      const code = isDeviceError(e) ? (e.cause as { code?: string } | undefined)?.code : undefined;
      if (code && TLS_UNTRUSTED.has(code))
        throw new DeviceError(
          'ERR_DEVICE_DOWNLOAD_UNTRUSTED',
          `${url.href}: the server's certificate is not trusted by this device (${code}); install its root first, or get the file another way`,
          { cause: e },
        );
      throw e;
    }
    if (REDIRECTS.has(res.status)) {
      const location = res.headers.location;
      if (!location)
        throw new DeviceError('ERR_DEVICE_DOWNLOAD', `${url.href}: a redirect without Location`);
      if (redirects >= o.maxRedirects)
        throw new DeviceError(
          'ERR_DEVICE_DOWNLOAD',
          `${input}: more than ${o.maxRedirects} redirects`,
        );
      const next = new URL(location, url);
      if (url.protocol === 'https:' && next.protocol !== 'https:')
        throw new DeviceError(
          'ERR_DEVICE_DOWNLOAD',
          `${url.href} redirects to ${next.href}: leaving HTTPS for plain HTTP is refused`,
        );
      if (next.protocol !== 'http:' && next.protocol !== 'https:')
        throw new DeviceError('ERR_DEVICE_DOWNLOAD', `${url.href} redirects to ${next.href}`);
      url = next;
      continue;
    }
    if (res.status !== 200)
      throw new DeviceError(
        'ERR_DEVICE_DOWNLOAD',
        `${url.href}: the server answered ${res.status}`,
      );
    return { bytes: new Uint8Array(res.body), url: url.href, warnings };
  }
}
