/**
 * What the host gave a run, measured in the same sitting: on a shared 2-core machine the same
 * tree's wall time moves by a third with other tenants' load, so figures are printed with the
 * machine's speed just before them.
 */
import { execFileSync } from 'node:child_process';

/** OpenSSL RSA-2048 signatures per second on one core, measured now (`openssl speed`). */
export function opensslSignRate(seconds = 3): number {
  const out = execFileSync('openssl', ['speed', '-seconds', String(seconds), 'rsa2048'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  }).toString();
  const m = /^rsa\s+2048 bits\s+[\d.]+s\s+[\d.]+s\s+([\d.]+)/m.exec(out);
  return m ? Number(m[1]) : NaN;
}
