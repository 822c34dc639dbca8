/**
 * What the device trusts, as Windows judges a chain (CertGetCertificateChain over the machine
 * stores): the anchors are the device Root store (a user's certificates chain to the machine's
 * roots as well: there is no user Root through MDM, omadm-reference.md §3.1), the candidates
 * for intermediates are the CA stores of both scopes plus whatever the caller brings (the other
 * certificates of an input). Chain rules are pki/chain.ts's.
 *
 * Status, for people and for the installer's trust rule (installer.ts):
 * - `trusted`: the chain reaches a root the device trusts now;
 * - `trusted-by-new-root`: it does once the given new roots are added (an input that brings
 *   its own root, which the user is asked to trust);
 * - `expired`: the best path reaches an anchor and its only problems are validity periods
 *   (expired or not yet valid);
 * - `untrusted`: anything else (an unknown issuer, a bad signature, a root nobody trusts…).
 */
import { buildChain, type ChainResult } from '../pki/chain.ts';
import { trustReport, type TrustReport } from '../pki/inspect.ts';
import { formatName, type Certificate } from '../pki/x509.ts';
import type { CertificateStores } from './stores.ts';

export type TrustStatus = 'trusted' | 'trusted-by-new-root' | 'untrusted' | 'expired';

export interface DeviceTrust extends TrustReport {
  readonly status: TrustStatus;
}

export interface JudgeOptions {
  /** More candidate intermediates (an input's other certificates). */
  readonly intermediates?: readonly Certificate[];
  /** Roots about to be installed, judged as anchors for `trusted-by-new-root`. */
  readonly newRoots?: readonly Certificate[];
  readonly at?: Date;
}

/** The certificates of the device Root store: the device's trust anchors. */
export function deviceAnchors(stores: CertificateStores): Certificate[] {
  return stores.list('device', 'Root').map((e) => stores.certificate(e));
}

function deviceIntermediates(stores: CertificateStores): Certificate[] {
  return [...stores.list('device', 'CA'), ...stores.list('user', 'CA')].map((e) =>
    stores.certificate(e),
  );
}

const VALIDITY = new Set(['expired', 'not-yet-valid']);

function judged(r: ChainResult, status: TrustStatus, summary?: string) {
  return { trust: { ...trustReport(r), ...(summary ? { summary } : {}), status }, chain: r.chain };
}

/** Judges `cert` on this device (see the module comment); `chain` is the path found. */
export function judgeOnDevice(
  stores: CertificateStores,
  cert: Certificate,
  o: JudgeOptions = {},
): { readonly trust: DeviceTrust; readonly chain: readonly Certificate[] } {
  const anchors = deviceAnchors(stores);
  const intermediates = [...(o.intermediates ?? []), ...deviceIntermediates(stores)];
  const at = o.at ?? new Date();
  const now = buildChain(cert, { trusted: anchors, intermediates, at });
  if (now.trusted) return judged(now, 'trusted');
  let best = now;
  if (o.newRoots?.length) {
    best = buildChain(cert, { trusted: [...anchors, ...o.newRoots], intermediates, at });
    if (best.trusted) {
      const path = best.chain.map((c) => formatName(c.subject) || '(empty subject)').join(' → ');
      return judged(best, 'trusted-by-new-root', `trusted once the new root is installed: ${path}`);
    }
  }
  // Only validity problems: the path reached an anchor (a path that did not ends in a problem).
  const onlyValidity = best.problems.every((p) => VALIDITY.has(p.code));
  return judged(best, onlyValidity ? 'expired' : 'untrusted');
}
