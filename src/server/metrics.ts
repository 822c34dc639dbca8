/**
 * Prometheus metrics (prom-client) at `/metrics`, and readiness at `/readyz`:
 *
 * - `certpost_http_request_duration_seconds{method,route,status}`: every request, by route
 *   pattern (never by raw URL: no secret or id lands in a label);
 * - `certpost_events_total{action,reason}`: every audited event (certificate.issued,
 *   request.refused with its reason, device.enrolled, …), counted where the audit log is
 *   written, so issuance, refusals by code, enrollments and revocations need no counters of
 *   their own;
 * - `certpost_mdm_messages_total{result}`: OMA-DM messages (ok, unauthenticated, refused, bad);
 * - `certpost_pending_requests`: requests held for approval, read at scrape time;
 * - Node's default process metrics.
 *
 * `/metrics` needs an admin API token (`Authorization: Bearer …`, Prometheus' `authorization`
 * scrape setting): it tells how the CA is used. With `--workers N` each process answers for
 * itself.
 */
import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { AuditEntry, AuditLog, RequestStore, Store } from '../store/types.ts';
import { bearer } from './admin-api.ts';
import * as ops from './admin-ops.ts';

export interface Metrics {
  readonly registry: Registry;
  readonly duration: Histogram<'method' | 'route' | 'status'>;
  /** Counts an audited event. */
  event(e: AuditEntry): void;
  mdmMessage(result: 'ok' | 'unauthenticated' | 'refused' | 'bad'): void;
}

export function createMetrics(store: Pick<RequestStore, 'listRequests'>): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'certpost_' });
  const events = new Counter({
    name: 'certpost_events_total',
    help: 'Audited events by action and, for refusals, reason',
    labelNames: ['action', 'reason'],
    registers: [registry],
  });
  const mdm = new Counter({
    name: 'certpost_mdm_messages_total',
    help: 'OMA-DM messages from devices, by result',
    labelNames: ['result'],
    registers: [registry],
  });
  registry.registerMetric(
    new Gauge({
      name: 'certpost_pending_requests',
      help: 'Enrollment requests held for approval',
      registers: [],
      async collect() {
        this.set((await store.listRequests('pending')).length);
      },
    }),
  );
  const duration = new Histogram({
    name: 'certpost_http_request_duration_seconds',
    help: 'HTTP request duration by route pattern',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  return {
    registry,
    duration,
    event(e) {
      const reason = e.details['reason'];
      events.inc({ action: e.action, reason: typeof reason === 'string' ? reason : '' });
    },
    mdmMessage(result) {
      mdm.inc({ result });
    },
  };
}

/** The store with its audit log counted into `metrics` (one place sees every event). */
export function countingAudit<S extends AuditLog>(store: S, metrics: Metrics): S {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'appendAudit')
        return async (e: AuditEntry) => {
          await target.appendAudit(e);
          metrics.event(e);
        };
      return Reflect.get(target, prop, receiver) as unknown;
    },
  });
}

/** `/metrics` (admin token), `/readyz` (the store answers), and the request-duration hook. */
export function registerMetrics(
  app: FastifyInstance,
  metrics: Metrics,
  deps: ops.AdminDeps & { readonly store: Pick<Store, 'status'> },
): void {
  app.addHook('onResponse', async (req, reply) => {
    metrics.duration.observe(
      {
        method: req.method,
        route: req.routeOptions.url ?? 'unmatched',
        status: String(reply.statusCode),
      },
      reply.elapsedTime / 1000,
    );
  });
  app.get('/metrics', async (req, reply) => {
    if (!(await ops.authenticateApiToken(deps, bearer(req.headers.authorization))))
      return reply
        .code(401)
        .header('www-authenticate', 'Bearer realm="certpost"')
        .send({ error: 'unauthorized', message: 'metrics need an API token' });
    return reply
      .header('content-type', metrics.registry.contentType)
      .send(await metrics.registry.metrics());
  });
  app.get('/readyz', async (_req, reply) => {
    try {
      const s = await deps.store.status();
      if (s.schemaVersion < s.latestSchemaVersion)
        return reply
          .code(503)
          .send({ status: 'unavailable', reason: 'the schema is not migrated' });
      return { status: 'ready' };
    } catch {
      return reply.code(503).send({ status: 'unavailable', reason: 'the store does not answer' });
    }
  });
}
