/**
 * `certpost convert`: re-encodes what a file holds. The whole output is built in memory first
 * and written atomically, so a failure (no key for a PFX, several certificates for one DER
 * file) leaves nothing behind.
 */
import { CliError, EXIT } from './exit-codes.ts';
import { writeAtomicFile } from '../util/atomic-file.ts';
import { exportPkcs8 } from '../pki/keys.ts';
import { keyMatchesCertificate } from '../pki/keys.ts';
import { encodePem, encodePemCertificates } from '../pki/pem.ts';
import { encodePkcs12 } from '../pki/pkcs12.ts';
import { encodePkcs7Certificates } from '../pki/pkcs7.ts';
import type { PkiContents } from '../pki/read.ts';

export const CONVERT_FORMATS = ['pem', 'der', 'p7b', 'pfx'] as const;
export type ConvertFormat = (typeof CONVERT_FORMATS)[number];

export interface ConvertOptions {
  readonly to: ConvertFormat;
  readonly out: string | undefined;
  readonly outPassword: string | undefined;
  readonly profile: 'modern' | 'compat';
  readonly keys: boolean;
  readonly index: number | undefined;
  readonly write: (data: Uint8Array | string) => void;
}

/** What cannot be converted is a usage problem: the user asked for something the file lacks. */
class ConvertError extends CliError {
  constructor(message: string) {
    super(message, EXIT.usage);
  }
}

/** Builds the output bytes for `to` from `contents`. */
export async function encodeAs(
  contents: PkiContents,
  o: Omit<ConvertOptions, 'out' | 'write'>,
): Promise<Uint8Array | string> {
  const certs = contents.certificates;
  switch (o.to) {
    case 'pem': {
      if (certs.length === 0 && !(o.keys && contents.keys.length))
        throw new ConvertError('the file holds no certificate');
      let text = encodePemCertificates(certs);
      if (o.keys) {
        for (const k of contents.keys) {
          text += encodePem(
            o.outPassword === undefined ? 'PRIVATE KEY' : 'ENCRYPTED PRIVATE KEY',
            exportPkcs8(k, o.outPassword),
          );
        }
      }
      return text;
    }
    case 'der': {
      if (certs.length === 0) throw new ConvertError('the file holds no certificate');
      if (certs.length > 1 && o.index === undefined) {
        throw new ConvertError(
          `the file holds ${certs.length} certificates: choose one with --index N, or use --to p7b or --to pem`,
        );
      }
      const c = certs[(o.index ?? 1) - 1];
      if (!c)
        throw new ConvertError(`--index ${o.index}: the file holds ${certs.length} certificates`);
      return c.der;
    }
    case 'p7b':
      if (certs.length === 0) throw new ConvertError('the file holds no certificate');
      return encodePkcs7Certificates(certs);
    case 'pfx': {
      const [key, ...more] = contents.keys;
      if (!key) throw new ConvertError('a PFX needs a private key: the file holds none');
      if (more.length)
        throw new ConvertError(
          `a PFX holds one identity: the file holds ${contents.keys.length} private keys`,
        );
      const own = certs.find((c) => keyMatchesCertificate(key, c));
      if (!own) throw new ConvertError('no certificate in the file matches the private key');
      return encodePkcs12(
        {
          key,
          certificates: [own, ...certs.filter((c) => c !== own)],
          ...(key.friendlyName !== undefined ? { friendlyName: key.friendlyName } : {}),
        },
        o.outPassword ?? '',
        { profile: o.profile },
      );
    }
  }
}

export async function convert(contents: PkiContents, o: ConvertOptions): Promise<void> {
  const data = await encodeAs(contents, o);
  if (o.out) await writeAtomicFile(o.out, data, o.to === 'pfx' || o.keys ? 0o600 : 0o644);
  else o.write(data);
}
