/**
 * Trust anchors for `inspect`: the operating system's bundle (Debian's ca-certificates) plus
 * any files the user names with `--trust`. Reading files is the CLI's job; `pki` only
 * receives the parsed certificates.
 */
import { readFile } from 'node:fs/promises';
import { readPki } from '../pki/read.ts';
import type { Certificate } from '../pki/x509.ts';

/** Debian's bundle of the system's trusted roots. */
export const SYSTEM_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

/** Certificates of the given files, plus the system bundle when asked and present. */
export async function loadTrustAnchors(
  files: readonly string[],
  system: boolean,
): Promise<Certificate[]> {
  const out: Certificate[] = [];
  const sources = system ? [SYSTEM_BUNDLE, ...files] : files;
  for (const path of sources) {
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await readFile(path));
    } catch (e) {
      if (path === SYSTEM_BUNDLE) continue; // no system store on this host: nothing is trusted by default
      throw e;
    }
    out.push(...(await readPki(bytes, { filename: path })).certificates);
  }
  return out;
}
