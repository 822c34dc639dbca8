/**
 * Certificate stores per scope (device, user): Root (device only, as Windows keeps user roots
 * in the device's), CA, My, TrustedPublisher, TrustedPeople, UntrustedCertificates, OemEsim.
 * A certificate is keyed by its SHA-1 thumbprint within a store and remembers where it came
 * from and which key (if any) it was installed with. Removing the last certificate that uses a
 * key removes the key ("Delete removes certificate and key").
 */
import { encodePem } from '../pki/pem.ts';
import { createHash } from 'node:crypto';
import { parseCertificate, type Certificate } from '../pki/x509.ts';
import { DeviceError } from './errors.ts';
import type { KeyVault } from './keys.ts';
import type {
  CertificateEntry,
  CertificateSource,
  DeviceStateData,
  Scope,
  StoreName,
} from './state.ts';

/** SHA-1 of the DER, upper-case hex: the `{CertHash}` of the CSPs and Windows' thumbprint. */
export function thumbprintOf(der: Uint8Array): string {
  return createHash('sha1').update(der).digest('hex').toUpperCase();
}

/** Parses a certificate for a store; a malformed one is ERR_DEVICE_BAD_CERTIFICATE. */
export function readCertificate(der: Uint8Array): Certificate {
  try {
    return parseCertificate(der);
  } catch (e) {
    throw new DeviceError('ERR_DEVICE_BAD_CERTIFICATE', 'the certificate does not decode', {
      cause: e,
    });
  }
}

export class CertificateStores {
  readonly #state: () => DeviceStateData;
  readonly #keys: KeyVault;
  /** Parsed certificates by DER base64 (parsing is the costly part of a listing). */
  readonly #parsed = new Map<string, Certificate>();

  constructor(state: () => DeviceStateData, keys: KeyVault) {
    this.#state = state;
    this.#keys = keys;
  }

  list(scope: Scope, store: StoreName): CertificateEntry[] {
    return this.#state().certificates.filter((c) => c.scope === scope && c.store === store);
  }

  /** The device Root store as PEM: what the device's HTTPS trusts besides the public roots. */
  trustedRootsPem(): string[] {
    return this.list('device', 'Root').map((c) =>
      encodePem('CERTIFICATE', Buffer.from(c.der, 'base64')),
    );
  }

  all(): readonly CertificateEntry[] {
    return this.#state().certificates;
  }

  /** The certificates a CSP install (PFX or SCEP `{UniqueID}`) put in a scope. */
  installedBy(scope: Scope, kind: CertificateSource['kind'], id: string): CertificateEntry[] {
    return this.#state().certificates.filter(
      (c) => c.scope === scope && c.source.kind === kind && c.source.id === id,
    );
  }

  find(scope: Scope, store: StoreName, thumbprint: string): CertificateEntry | undefined {
    const t = thumbprint.toUpperCase();
    return this.#state().certificates.find(
      (c) => c.scope === scope && c.store === store && c.thumbprint === t,
    );
  }

  certificate(entry: CertificateEntry): Certificate {
    let c = this.#parsed.get(entry.der);
    if (!c) {
      c = parseCertificate(Buffer.from(entry.der, 'base64'));
      this.#parsed.set(entry.der, c);
    }
    return c;
  }

  /**
   * Adds a certificate; returns false when the store already holds it (the CSP's 418).
   * `expectedThumbprint`, when given, must be the certificate's (the `{CertHash}` node name).
   */
  add(o: {
    scope: Scope;
    store: StoreName;
    der: Uint8Array;
    source: CertificateSource;
    keyId?: string;
    expectedThumbprint?: string;
  }): CertificateEntry | false {
    readCertificate(o.der);
    const thumbprint = thumbprintOf(o.der);
    if (o.expectedThumbprint !== undefined && o.expectedThumbprint.toUpperCase() !== thumbprint)
      throw new DeviceError(
        'ERR_DEVICE_BAD_CERTIFICATE',
        `the certificate's SHA-1 is ${thumbprint}, not ${o.expectedThumbprint}`,
      );
    if (o.scope === 'user' && o.store === 'Root')
      throw new DeviceError('ERR_DEVICE_BAD_PARAMETER', 'there is no user Root store');
    if (this.find(o.scope, o.store, thumbprint)) return false;
    const entry: CertificateEntry = {
      scope: o.scope,
      store: o.store,
      thumbprint,
      der: Buffer.from(o.der).toString('base64'),
      source: o.source,
      ...(o.keyId !== undefined ? { keyId: o.keyId } : {}),
      installedAt: new Date().toISOString(),
    };
    this.#state().certificates.push(entry);
    return entry;
  }

  /** Removes a certificate, and its key when no other certificate uses it. */
  remove(entry: CertificateEntry): void {
    const state = this.#state();
    state.certificates = state.certificates.filter((c) => c !== entry);
    if (entry.keyId && !state.certificates.some((c) => c.keyId === entry.keyId))
      this.#keys.remove(entry.keyId);
  }
}
