/**
 * Test helper: a cookie-keeping client over `app.inject` (no socket), for the portal's
 * in-process tests, and what a browser's form would send. The browser tests use Chromium
 * itself (src/testing/browser.ts).
 */
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';

export interface FormClient {
  readonly cookies: Map<string, string>;
  get(url: string, headers?: Record<string, string>): Promise<LightMyRequestResponse>;
  /** POSTs a urlencoded form (with this site's Origin unless `headers` says otherwise). */
  post(
    url: string,
    form: Record<string, string>,
    headers?: Record<string, string>,
  ): Promise<LightMyRequestResponse>;
}

/** scrypt parameters for tests that hash many passwords: the format and checks are the same. */
export const CHEAP_SCRYPT = { N: 1024, r: 8, p: 1 } as const;

/** The `_csrf` value of the first form on a page. */
export function csrfOf(body: string): string {
  const m = /name="_csrf" value="([^"]+)"/.exec(body);
  if (!m) throw new Error(`no CSRF field on the page: ${body.slice(0, 300)}`);
  return m[1]!;
}

export function formClient(
  app: FastifyInstance,
  o: { readonly origin?: string; readonly remoteAddress?: string } = {},
): FormClient {
  const origin = o.origin ?? 'http://localhost:80';
  const from = o.remoteAddress !== undefined ? { remoteAddress: o.remoteAddress } : {};
  const cookies = new Map<string, string>();
  const keep = (res: LightMyRequestResponse) => {
    for (const c of res.cookies as { name: string; value: string; maxAge?: number }[]) {
      if (c.value === '' || c.maxAge === 0) cookies.delete(c.name);
      else cookies.set(c.name, c.value);
    }
    return res;
  };
  const cookieHeader = () => [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  return {
    cookies,
    async get(url, headers = {}) {
      return keep(
        await app.inject({
          method: 'GET',
          url,
          ...from,
          headers: { cookie: cookieHeader(), ...headers },
        }),
      );
    },
    async post(url, form, headers = {}) {
      return keep(
        await app.inject({
          method: 'POST',
          url,
          ...from,
          payload: new URLSearchParams(form).toString(),
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            origin,
            cookie: cookieHeader(),
            ...headers,
          },
        }),
      );
    },
  };
}

/** Signs `username` in through the sign-in form; returns the client, now holding the session. */
export async function signIn(
  app: FastifyInstance,
  username: string,
  password: string,
): Promise<FormClient> {
  const client = formClient(app);
  const page = await client.get('/signin');
  const res = await client.post('/signin', { _csrf: csrfOf(page.body), username, password });
  if (res.statusCode !== 303)
    throw new Error(`sign-in failed: ${res.statusCode} ${res.body.slice(0, 200)}`);
  return client;
}
