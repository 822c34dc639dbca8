/**
 * Test helpers over a running server's context: what an administrator would do with
 * `certpost challenge create`, done in-process (through the same admin operation) so tests
 * need not spawn the CLI.
 */
import { createChallenge } from './admin-ops.ts';
import type { ServerContext } from './context.ts';

/** Creates a one-time challenge for `profile` (10 minutes) and returns its secret. */
export async function oneTimeChallenge(
  context: ServerContext,
  profile: string,
  subject: string | null = null,
): Promise<string> {
  const created = await createChallenge(context, 'test', {
    profile,
    ttlMs: 600_000,
    ...(subject !== null ? { subject } : {}),
  });
  return created.challenge;
}
