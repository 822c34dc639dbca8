/**
 * The admin HTTP API under `/api/v1`: JSON over the operations of admin-ops.ts, the same ones the
 * `certpost` admin commands run. Thin: authentication, input validation, status mapping.
 *
 * Authentication: `Authorization: Bearer <token>`, a token made by `certpost api-token create`
 * (RFC 6750 §2.1). Every route of this plugin, and any path under its prefix that matches no
 * route, first passes the `onRequest` hook: a missing, malformed, unknown, expired or revoked
 * token gets the same 401 with `WWW-Authenticate: Bearer`, before the body is even read. The
 * token is looked up by its SHA-256 hash; it is never logged, and the audit log names the actor
 * `api:<token name>`.
 *
 * Validation: fastify JSON schemas. Fastify's default Ajv strips properties that
 * `additionalProperties: false` forbids instead of refusing them, so unknown fields are refused
 * with `propertyNames`, and {@link badRequest} turns that into `unknown field "x"`.
 */
import { annotate } from './request-log.ts';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sendUnavailable } from './unavailable.ts';
import { isStoreUnavailable, type ApiTokenRecord, type RequestStatus } from '../store/types.ts';
import { MAIL_FORMAT_NAMES, type MailFormat } from '../mail/attachment.ts';
import { MailError, type MailErrorCode } from '../mail/errors.ts';
import type { Pkcs12Profile } from '../pki/pkcs12.ts';
import * as ops from './admin-ops.ts';
import { mailCertificate, type MailDeps } from './mail-ops.ts';
import * as mdm from './mdm-admin.ts';

export const ADMIN_API_PREFIX = '/api/v1';

/** HTTP status of each admin operation failure: the one table for this API. */
export const ADMIN_STATUS: Readonly<Record<ops.AdminErrorCode, number>> = {
  ERR_ADMIN_INVALID: 400,
  ERR_ADMIN_UNKNOWN_PROFILE: 400,
  ERR_ADMIN_NOT_FOUND: 404,
  ERR_ADMIN_CONFLICT: 409,
};

/**
 * HTTP status of each mail failure: the caller's mistakes are 4xx; a relay that cannot be
 * reached, refuses our login or fails TLS is the server's upstream problem (502/504); no relay
 * configured is 503.
 */
export const MAIL_STATUS: Readonly<Record<MailErrorCode, number>> = {
  ERR_MAIL_CONFIG: 500,
  ERR_MAIL_NOT_CONFIGURED: 503,
  ERR_MAIL_INVALID_ADDRESS: 400,
  ERR_MAIL_FORMAT_BLOCKED: 409,
  ERR_MAIL_CONNECTION: 502,
  ERR_MAIL_TIMEOUT: 504,
  ERR_MAIL_TLS: 502,
  ERR_MAIL_AUTH: 502,
  ERR_MAIL_RECIPIENT_REFUSED: 422,
  ERR_MAIL_REFUSED: 502,
};

/** One answer for every authentication failure: nothing tells the four cases apart. */
const UNAUTHORIZED = {
  error: 'unauthorized',
  message: 'a valid API token is required (Authorization: Bearer <token>)',
} as const;
const CHALLENGE = 'Bearer realm="certpost"';

/** The token, from `Authorization: Bearer <token>` (scheme case-insensitive, RFC 7235 §2.1). */
export function bearer(header: string | undefined): string | undefined {
  const m = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header ?? '');
  return m?.[1];
}

/** An object schema that refuses properties it does not name. */
function strictObject(
  properties: Record<string, object>,
  required: readonly string[] = [],
): Record<string, unknown> {
  const names = Object.keys(properties);
  return {
    type: 'object',
    properties,
    required,
    propertyNames: names.length ? { enum: names } : { not: {} },
  };
}

/** POST routes whose fields are all optional accept an empty body as `{}`. */
async function emptyBodyIsObject(req: FastifyRequest): Promise<void> {
  if (req.body === undefined || req.body === null) req.body = {};
}

const REQUEST_STATUSES: readonly RequestStatus[] = ['pending', 'approved', 'rejected', 'issued'];
const LIMIT = { type: 'integer', minimum: 1, maximum: 1000 };
const TEXT = { type: 'string', minLength: 1, maxLength: 1024 };

/** A 400 body from a fastify validation or body-parsing error, naming what was wrong. */
function badRequest(e: FastifyError): { error: 'bad-request'; message: string } {
  const unknown = e.validation?.find((v) => v.keyword === 'propertyNames');
  const name = (unknown?.params as { propertyName?: unknown } | undefined)?.propertyName;
  const where = e.validationContext ?? 'body';
  const message =
    typeof name === 'string'
      ? `unknown field "${name}" in ${where}`
      : e.validation?.length
        ? e.validation
            .filter((v) => !v.schemaPath.includes('propertyNames'))
            .map(
              (v) => `${where}${v.instancePath.replace(/\//g, '.')} ${v.message ?? 'is invalid'}`,
            )
            .join('; ')
        : e.message;
  return { error: 'bad-request', message };
}

/** Registers the admin API on `app` (one call in the composition root, serve.ts). */
export function registerAdminApi(
  app: FastifyInstance,
  deps: ops.AdminDeps & mdm.MdmAdminDeps & MailDeps,
  prefix = ADMIN_API_PREFIX,
): void {
  /** The token each authenticated request came with. */
  const tokens = new WeakMap<FastifyRequest, ApiTokenRecord>();
  const actor = (req: FastifyRequest): string => {
    const t = tokens.get(req);
    // Unreachable: the onRequest hook answered 401 already. Fail closed all the same.
    if (!t) throw new Error('admin API request without an authenticated token');
    return `api:${t.name}`;
  };

  void app.register(
    async (api) => {
      api.addHook('onRequest', async (req, reply) => {
        const token = await ops.authenticateApiToken(deps, bearer(req.headers.authorization));
        if (token) {
          tokens.set(req, token);
          annotate(req, { apiToken: token.name });
          return;
        }
        req.log.warn({ ip: req.ip }, 'admin API: authentication failed');
        return reply.code(401).header('www-authenticate', CHALLENGE).send(UNAUTHORIZED);
      });

      api.setErrorHandler(async (e: FastifyError, req, reply: FastifyReply) => {
        if (e instanceof ops.AdminError)
          return reply.code(ADMIN_STATUS[e.code]).send({ error: e.code, message: e.message });
        if (e instanceof MailError) {
          const status = MAIL_STATUS[e.code];
          // Mail messages name the relay and the recipient, never a password (mail/errors.ts).
          if (status >= 500) req.log.warn({ code: e.code }, `admin API: ${e.message}`);
          return reply.code(status).send({ error: e.code, message: e.message });
        }
        if (e.validation || (e.statusCode !== undefined && e.statusCode < 500))
          return reply.code(e.statusCode ?? 400).send(badRequest(e));
        if (isStoreUnavailable(e)) return sendUnavailable(reply, true);
        req.log.error({ err: e }, 'admin API: request failed');
        return reply.code(500).send({ error: 'internal', message: 'internal error' });
      });

      // Only reached with a valid token: a path with no route is not disclosed to anyone else.
      api.setNotFoundHandler(async (req, reply) =>
        reply.code(404).send({ error: 'not-found', message: `no route ${req.method} ${req.url}` }),
      );

      api.route<{ Body: { profile?: string; subject?: string; ttlSeconds?: number } }>({
        method: 'POST',
        url: '/challenges',
        preValidation: emptyBodyIsObject,
        schema: {
          body: strictObject({
            profile: TEXT,
            subject: TEXT,
            ttlSeconds: { type: 'integer', minimum: 1, maximum: 366 * 86_400 },
          }),
        },
        handler: async (req, reply) => {
          const { profile, subject, ttlSeconds } = req.body;
          const created = await ops.createChallenge(deps, actor(req), {
            ...(profile !== undefined ? { profile } : {}),
            ...(subject !== undefined ? { subject } : {}),
            ...(ttlSeconds !== undefined ? { ttlMs: ttlSeconds * 1000 } : {}),
          });
          return reply.code(201).send(created);
        },
      });

      api.route<{ Querystring: { status?: RequestStatus } }>({
        method: 'GET',
        url: '/requests',
        schema: { querystring: strictObject({ status: { enum: REQUEST_STATUSES } }) },
        handler: async (req) => ops.listRequests(deps, req.query.status ?? 'pending'),
      });

      for (const decision of ['approve', 'reject'] as const) {
        api.route<{ Params: { id: string } }>({
          method: 'POST',
          url: `/requests/:id/${decision}`,
          preValidation: emptyBodyIsObject,
          schema: { params: strictObject({ id: TEXT }, ['id']), body: strictObject({}) },
          handler: async (req) => ops.decideRequest(deps, actor(req), req.params.id, decision),
        });
      }

      api.route<{ Querystring: { subject?: string; revoked?: boolean; limit?: number } }>({
        method: 'GET',
        url: '/certificates',
        schema: {
          querystring: strictObject({ subject: TEXT, revoked: { type: 'boolean' }, limit: LIMIT }),
        },
        handler: async (req) => {
          const { subject, revoked, limit } = req.query;
          return ops.listCertificates(deps, {
            ...(subject !== undefined ? { subject } : {}),
            ...(revoked !== undefined ? { revoked } : {}),
            ...(limit !== undefined ? { limit } : {}),
          });
        },
      });

      api.route<{ Params: { serial: string }; Body: { reason?: ops.RevocationReasonName } }>({
        method: 'POST',
        url: '/certificates/:serial/revoke',
        preValidation: emptyBodyIsObject,
        schema: {
          params: strictObject({ serial: { type: 'string', pattern: '^[0-9A-Fa-f]{1,64}$' } }, [
            'serial',
          ]),
          body: strictObject({ reason: { enum: [...ops.REVOCATION_REASONS.keys()] } }),
        },
        handler: async (req) =>
          ops.revokeCertificate(deps, actor(req), req.params.serial, req.body.reason),
      });

      api.route<{
        Params: { serial: string };
        Body: { to: string; format?: MailFormat; pfxProfile?: Pkcs12Profile };
      }>({
        method: 'POST',
        url: '/certificates/:serial/mail',
        schema: {
          params: strictObject({ serial: { type: 'string', pattern: '^[0-9A-Fa-f]{1,64}$' } }, [
            'serial',
          ]),
          body: strictObject(
            {
              to: { type: 'string', minLength: 3, maxLength: 320 },
              format: { enum: MAIL_FORMAT_NAMES },
              pfxProfile: { enum: ['modern', 'compat'] },
            },
            ['to'],
          ),
        },
        // A PFX password generated here is in this answer only: it is never mailed or stored.
        handler: async (req) =>
          mailCertificate(deps, actor(req), {
            to: req.body.to,
            source: { serial: req.params.serial },
            ...(req.body.format !== undefined ? { format: req.body.format } : {}),
            ...(req.body.pfxProfile !== undefined ? { pfxProfile: req.body.pfxProfile } : {}),
          }),
      });

      api.route<{ Body: { user?: string; uses?: number; ttlSeconds?: number } }>({
        method: 'POST',
        url: '/enrollment-tokens',
        preValidation: emptyBodyIsObject,
        schema: {
          body: strictObject({
            user: TEXT,
            uses: { type: 'integer', minimum: 1, maximum: 1_000_000 },
            ttlSeconds: { type: 'integer', minimum: 1, maximum: 366 * 86_400 },
          }),
        },
        handler: async (req, reply) => {
          const { user, uses, ttlSeconds } = req.body;
          const created = await mdm.createEnrollmentToken(deps, actor(req), {
            ...(user !== undefined ? { user } : {}),
            ...(uses !== undefined ? { uses } : {}),
            ...(ttlSeconds !== undefined ? { ttlMs: ttlSeconds * 1000 } : {}),
          });
          return reply.code(201).send(created);
        },
      });

      api.get('/enrollment-tokens', async () => mdm.listEnrollmentTokens(deps));

      api.route<{ Params: { id: string } }>({
        method: 'POST',
        url: '/enrollment-tokens/:id/revoke',
        preValidation: emptyBodyIsObject,
        schema: { params: strictObject({ id: TEXT }, ['id']), body: strictObject({}) },
        handler: async (req) => mdm.revokeEnrollmentToken(deps, actor(req), req.params.id),
      });

      api.route<{ Querystring: { limit?: number } }>({
        method: 'GET',
        url: '/devices',
        schema: { querystring: strictObject({ limit: LIMIT }) },
        handler: async (req) =>
          mdm.listDevices(deps, req.query.limit !== undefined ? { limit: req.query.limit } : {}),
      });

      api.route<{ Params: { id: string }; Querystring: { limit?: number } }>({
        method: 'GET',
        url: '/devices/:id',
        schema: {
          params: strictObject({ id: TEXT }, ['id']),
          querystring: strictObject({ limit: LIMIT }),
        },
        handler: async (req) =>
          mdm.showDevice(
            deps,
            req.params.id,
            req.query.limit !== undefined ? { limit: req.query.limit } : {},
          ),
      });

      api.route<{ Params: { id: string; thumbprint: string } }>({
        method: 'POST',
        url: '/devices/:id/certificates/:thumbprint/delete',
        preValidation: emptyBodyIsObject,
        schema: {
          params: strictObject(
            { id: TEXT, thumbprint: { type: 'string', pattern: '^[0-9A-Fa-f:]{40,59}$' } },
            ['id', 'thumbprint'],
          ),
          body: strictObject({}),
        },
        handler: async (req) =>
          mdm.deleteDeviceCertificate(deps, actor(req), req.params.id, req.params.thumbprint),
      });

      api.route<{ Params: { id: string }; Body: { payload: string } }>({
        method: 'POST',
        url: '/devices/:id/commands',
        schema: {
          params: strictObject({ id: TEXT }, ['id']),
          body: strictObject({ payload: { type: 'string', minLength: 1, maxLength: 512 * 1024 } }, [
            'payload',
          ]),
        },
        handler: async (req, reply) =>
          reply
            .code(201)
            .send(await mdm.runCommand(deps, actor(req), req.params.id, req.body.payload)),
      });

      api.route<{ Querystring: { limit?: number; action?: string } }>({
        method: 'GET',
        url: '/audit',
        schema: { querystring: strictObject({ limit: LIMIT, action: TEXT }) },
        handler: async (req) => {
          const { limit, action } = req.query;
          return ops.listAudit(deps, {
            ...(limit !== undefined ? { limit } : {}),
            ...(action !== undefined ? { action } : {}),
          });
        },
      });
    },
    { prefix },
  );
}
