/**
 * The `message` of a GET PKIOperation (RFC 8894 §4.1: `GET …?operation=PKIOperation&message=…`,
 * the pkiMessage in base64). Pure: the HTTP adapter (`server/scep-http.ts`) hands over the raw
 * query string, the fuzzer and the property tests call it directly.
 */

/**
 * Decodes the `message` query value of a GET PKIOperation as real clients send it: percent
 * encoded or not, `+` and `/` unescaped (macOS), line breaks inside (Cisco, sscep), padding
 * missing. Base64 never contains spaces, so a space is a `+` that form-decoding mangled.
 * Returns undefined when there is no message or it is not base64.
 */
export function decodeGetMessage(rawQuery: string): Uint8Array | undefined {
  const m = /(?:^|&)message=([^&]*)/.exec(rawQuery);
  if (!m) return undefined;
  let v = m[1]!;
  try {
    v = decodeURIComponent(v.replace(/\+/g, '%2B'));
  } catch {
    return undefined;
  }
  v = v
    .replace(/ /g, '+')
    .replace(/[\r\n\t]/g, '')
    .replace(/-/g, '+')
    .replace(/_/g, '/');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(v)) return undefined;
  return new Uint8Array(Buffer.from(v, 'base64'));
}
