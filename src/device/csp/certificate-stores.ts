/**
 * The certificate stores as the management tree shows them:
 *
 * - RootCATrustedCertificates (MS-MDM CSP reference; Device and User):
 *   `{Store}/{CertHash}/EncodedCertificate` (A G R, b64) and the read-only `IssuedBy`,
 *   `IssuedTo`, `ValidFrom`, `ValidTo`, `TemplateName`, for the stores Root (device only),
 *   CA, TrustedPublisher, TrustedPeople, UntrustedCertificates and OemEsim.
 * - CertificateStore (the Windows Phone 8.1 / 10 Mobile tree, device root):
 *   `ROOT/{CertHash}` and `ROOT/System/{CertHash}` are the device Root store, `CA/…` and
 *   `CA/System/…` the device CA store, and `MY/User/{CertHash}` the user's personal store,
 *   where certificates the user installed (web, mail) and the ones MDM enrolled appear, and
 *   can be listed and deleted.
 *
 * The store is the truth: `{CertHash}` nodes exist exactly when the store holds that
 * certificate (tree.ts `owns`/`list`), whoever installed it.
 *
 * Semantics where the CSP reference is silent (omadm-reference.md §3.1): the `{CertHash}`
 * segment must be the certificate's SHA-1 (any case) → else 400, as is a value that is not a
 * base64 DER certificate; Replace of EncodedCertificate with the same certificate is 200.
 */
import { formatName, inspectCertificate, type Name } from '../../pki/x509.ts';
import { isDeviceError } from '../errors.ts';
import type { Scope, StoreName } from '../state.ts';
import type { CertificateStores } from '../stores.ts';
import { STATUS, type CspHooks, type LeafValue, type StatusCode } from '../tree.ts';
import { parseCspUri } from './uri.ts';

const ROOT_CA_STORES: Readonly<Record<string, StoreName>> = {
  Root: 'Root',
  CA: 'CA',
  TrustedPublisher: 'TrustedPublisher',
  TrustedPeople: 'TrustedPeople',
  UntrustedCertificates: 'UntrustedCertificates',
  OemEsim: 'OemEsim',
};

/** CertificateStore's store paths (below `./Device/Vendor/MSFT/CertificateStore`). */
const LEGACY_STORES: Readonly<Record<string, { scope: Scope; store: StoreName }>> = {
  ROOT: { scope: 'device', store: 'Root' },
  'ROOT/System': { scope: 'device', store: 'Root' },
  CA: { scope: 'device', store: 'CA' },
  'CA/System': { scope: 'device', store: 'CA' },
  'MY/User': { scope: 'user', store: 'My' },
};

const LEAVES = new Set([
  'EncodedCertificate',
  'IssuedBy',
  'IssuedTo',
  'ValidFrom',
  'ValidTo',
  'TemplateName',
]);

interface StoreUri {
  readonly scope: Scope;
  readonly store: StoreName;
  readonly hash?: string;
  readonly leaf?: string;
}

/** Which store (and certificate, and leaf) a URI addresses, if it is a store URI. */
function storeUri(uri: string): StoreUri | undefined {
  const u = parseCspUri(uri);
  if (!u) return undefined;
  let scope: Scope;
  let store: StoreName | undefined;
  let rest: readonly string[];
  if (u.csp === 'RootCATrustedCertificates') {
    scope = u.scope;
    store = ROOT_CA_STORES[u.path[0] ?? ''];
    rest = u.path.slice(1);
  } else if (u.csp === 'CertificateStore' && u.scope === 'device') {
    // The longest store path wins: `ROOT/System` is a store, not a certificate named System.
    const n = LEGACY_STORES[u.path.slice(0, 2).join('/')]
      ? 2
      : LEGACY_STORES[u.path[0] ?? '']
        ? 1
        : 0;
    if (n === 0) return undefined;
    ({ scope, store } = LEGACY_STORES[u.path.slice(0, n).join('/')]!);
    rest = u.path.slice(n);
  } else return undefined;
  if (!store) return undefined;
  if (rest.length > 2 || (rest[1] !== undefined && !LEAVES.has(rest[1]))) return undefined;
  return {
    scope,
    store,
    ...(rest[0] !== undefined ? { hash: rest[0] } : {}),
    ...(rest[1] !== undefined ? { leaf: rest[1] } : {}),
  };
}

/** A display name as CertGetNameString's simple display type gives it: the CN, else the DN. */
function displayName(name: Name): string {
  const cn = name.rdns.flat().findLast((a) => a.type === 'CN');
  return cn?.value ?? formatName(name);
}

const isoSeconds = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

export function certificateStoreHooks(stores: CertificateStores): CspHooks {
  const entryOf = (s: StoreUri) =>
    s.hash === undefined ? undefined : stores.find(s.scope, s.store, s.hash);
  return {
    owns(uri) {
      const s = storeUri(uri);
      return s?.hash !== undefined;
    },
    list(uri) {
      const s = storeUri(uri);
      if (!s || s.hash !== undefined) return undefined;
      return stores.list(s.scope, s.store).map((c) => c.thumbprint);
    },
    read(uri) {
      const s = storeUri(uri);
      if (!s?.leaf) return undefined;
      const entry = entryOf(s);
      if (!entry) return undefined;
      const cert = stores.certificate(entry);
      switch (s.leaf) {
        case 'EncodedCertificate':
          return entry.der;
        case 'IssuedBy':
          return displayName(cert.issuer);
        case 'IssuedTo':
          return displayName(cert.subject);
        case 'ValidFrom':
          return isoSeconds(cert.notBefore);
        case 'ValidTo':
          return isoSeconds(cert.notAfter);
        case 'TemplateName':
          return inspectCertificate(cert).template ?? '';
      }
      return undefined;
    },
    beforeWrite(uri: string, value: LeafValue, command): StatusCode | undefined {
      const s = storeUri(uri);
      if (!s || s.leaf !== 'EncodedCertificate' || s.hash === undefined) return undefined;
      const der = Buffer.from(value.data.replace(/\s+/g, ''), 'base64');
      try {
        if (command === 'Replace') {
          const existing = entryOf(s);
          if (!existing) return STATUS.notFound;
          return existing.der === der.toString('base64') ? STATUS.ok : STATUS.badRequest;
        }
        const added = stores.add({
          scope: s.scope,
          store: s.store,
          der,
          source: { kind: 'mdm', uri },
          expectedThumbprint: s.hash,
        });
        return added ? STATUS.ok : STATUS.alreadyExists;
      } catch (e) {
        if (isDeviceError(e)) return STATUS.badRequest;
        throw e;
      }
    },
    beforeDelete(uri) {
      const s = storeUri(uri);
      if (!s || s.hash === undefined) return undefined;
      if (s.leaf !== undefined) return STATUS.notAllowed;
      const entry = entryOf(s);
      if (!entry) return STATUS.notFound;
      stores.remove(entry);
      return STATUS.ok;
    },
  };
}
