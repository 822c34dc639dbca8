/**
 * Windows enrollment over HTTP (MS-MDE2 §2.1): the thin adapter between fastify and mde2.ts.
 * Discovery answers a plain GET with 200 and no body (Windows probes it first); the three
 * services take SOAP 1.2 (`application/soap+xml`) and answer it, faults with HTTP 500 as the
 * SOAP HTTP binding wants. Bodies are capped before parsing.
 */
import type { FastifyInstance } from 'fastify';
import { MDE2_CONTENT_TYPE } from '../omadm/mde2.ts';
import { DISCOVERY_PATH, ENROLLMENT_PATH, POLICY_PATH, type MdeService } from './mde2.ts';

/** An enrollment message is a few kilobytes (a CSR and context); this is far above it. */
export const MAX_MDE2_BODY = 256 * 1024;

export function registerMde2(app: FastifyInstance, service: MdeService): void {
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(
      '*',
      { parseAs: 'string', bodyLimit: MAX_MDE2_BODY },
      (_req, body, done) => done(null, body),
    );
    scope.get(DISCOVERY_PATH, async (_req, reply) => reply.code(200).send());
    const routes: [string, (xml: string, peer: string) => ReturnType<MdeService['discover']>][] = [
      [DISCOVERY_PATH, (xml) => service.discover(xml)],
      [POLICY_PATH, (xml) => service.getPolicies(xml)],
      [ENROLLMENT_PATH, (xml, peer) => service.requestSecurityToken(xml, peer)],
    ];
    for (const [path, handle] of routes)
      scope.post(path, async (req, reply) => {
        const answer = await handle(typeof req.body === 'string' ? req.body : '', req.ip);
        return reply
          .code(answer.status)
          .header('content-type', MDE2_CONTENT_TYPE)
          .send(answer.body);
      });
  });
}
