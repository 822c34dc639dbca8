/**
 * Management URIs as the CSPs see them (already normalised by tree.ts: `./Vendor/MSFT/X` is
 * `./Device/Vendor/MSFT/X`): the scope, the CSP name and the path below it.
 */
import { uriSegments } from '../../omadm/ddf.ts';
import type { Scope } from '../state.ts';

export interface CspUri {
  readonly scope: Scope;
  readonly csp: string;
  /** Segments below the CSP root. */
  readonly path: readonly string[];
}

/** The URI's parts; undefined for another URI, or one with a malformed escape. */
export function parseCspUri(uri: string): CspUri | undefined {
  const m = /^\.\/(Device|User)\/Vendor\/MSFT\/([^/]+)(?:\/(.*))?$/.exec(uri);
  const path = m?.[3] ? uriSegments(m[3]) : [];
  if (!m || !path) return undefined;
  return { scope: m[1] === 'Device' ? 'device' : 'user', csp: m[2]!, path };
}

/** The root URI of a CSP in a scope. */
export function cspRoot(scope: Scope, csp: string): string {
  return `./${scope === 'device' ? 'Device' : 'User'}/Vendor/MSFT/${csp}`;
}
