/**
 * The HTTP answer to a database that is down, restarting, full or read-only
 * (`isStoreUnavailable`): 503 with Retry-After, so SCEP clients, devices and API callers try
 * again later instead of taking it as a refusal. One place for every adapter.
 */
import type { FastifyReply } from 'fastify';

/** What a 503 for an unavailable database asks clients to wait. */
export const RETRY_AFTER_SECONDS = 5;

export const UNAVAILABLE_MESSAGE = 'the database is unavailable; try again shortly';

export function sendUnavailable(reply: FastifyReply, json: boolean): FastifyReply {
  reply.code(503).header('retry-after', String(RETRY_AFTER_SECONDS));
  return json
    ? reply.send({ error: 'unavailable', message: UNAVAILABLE_MESSAGE })
    : reply.type('text/plain').send(`${UNAVAILABLE_MESSAGE}\n`);
}
