/**
 * Test helpers over a running server's context: what an administrator would do with
 * `certpost challenge create`, done in-process so tests need not spawn the CLI.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { challengeHash } from '../ca/enrollment.ts';
import type { ServerContext } from './context.ts';

/** Stores a one-time challenge for `profile` (10 minutes) and returns its secret. */
export async function oneTimeChallenge(
  context: ServerContext,
  profile: string,
  subject: string | null = null,
): Promise<string> {
  const secret = randomBytes(18).toString('base64url');
  const now = new Date();
  await context.store.createChallenge({
    id: randomUUID(),
    secretHash: challengeHash(secret),
    profile,
    subject,
    createdAt: now,
    expiresAt: new Date(now.getTime() + 600_000),
  });
  return secret;
}
