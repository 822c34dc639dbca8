/**
 * Management URIs as the CSPs see them (already normalised by tree.ts: `./Vendor/MSFT/X` is
 * `./Device/Vendor/MSFT/X`): the scope, the CSP name and the path below it.
 */
import type { Scope } from '../state.ts';

export interface CspUri {
  readonly scope: Scope;
  readonly csp: string;
  /** Segments below the CSP root. */
  readonly path: readonly string[];
}

export function parseCspUri(uri: string): CspUri | undefined {
  const m = /^\.\/(Device|User)\/Vendor\/MSFT\/([^/]+)(?:\/(.*))?$/.exec(uri);
  if (!m) return undefined;
  return {
    scope: m[1] === 'Device' ? 'device' : 'user',
    csp: m[2]!,
    path: m[3] ? m[3].split('/').map(decodeURIComponent) : [],
  };
}

/** The root URI of a CSP in a scope. */
export function cspRoot(scope: Scope, csp: string): string {
  return `./${scope === 'device' ? 'Device' : 'User'}/Vendor/MSFT/${csp}`;
}
