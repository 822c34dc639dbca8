/**
 * The portal's one stylesheet, served under a name that carries a hash of its content
 * (`/assets/portal.<hash>.css`), so browsers may keep it for a year: a new version has a new
 * name. Read once at start.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';

const CSS = readFileSync(new URL('./portal.css', import.meta.url));

/** Path of the stylesheet, for the layout's `<link>`. */
export const STYLESHEET = `/assets/portal.${createHash('sha256').update(CSS).digest('hex').slice(0, 16)}.css`;

export function registerAssets(scope: FastifyInstance): void {
  scope.get('/assets/:file', { config: { access: 'public' } }, async (req, reply) => {
    if (`/assets/${(req.params as { file: string }).file}` !== STYLESHEET)
      return reply.code(404).type('text/plain; charset=utf-8').send('not found\n');
    return reply
      .type('text/css; charset=utf-8')
      .header('cache-control', 'public, max-age=31536000, immutable')
      .send(CSS);
  });
}
