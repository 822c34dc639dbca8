/**
 * Size limits of the endpoints that take outside bytes, on the real listener: a body over its
 * route's cap is 413 before it is parsed (SCEP POST, SyncML, MS-MDE2 SOAP), a SCEP GET URL over
 * its cap is 414, one over Node's header limit is Node's 431, and the server goes on serving.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tempDir } from '../testing/tools.ts';
import { DISCOVERY_PATH } from './mde2.ts';
import { MAX_MDE2_BODY } from './mde2-http.ts';
import { MAX_SYNCML_BODY, MDM_PATH } from './mdm-http.ts';
import { MAX_SCEP_BODY, MAX_SCEP_URL } from './scep-http.ts';
import { startServer, type RunningServer } from './serve.ts';

let server: RunningServer;

before(async () => {
  server = await startServer({
    dataDir: join(tempDir(), 'data'),
    listen: '127.0.0.1:0',
    logLevel: 'error',
  });
});

after(async () => {
  await server.app.close();
});

/** A raw HTTP/1.1 request (fetch cannot send a URL past Node's header limit on its own terms). */
function send(
  method: string,
  path: string,
  body?: Uint8Array,
): Promise<{ status: number; text: string }> {
  const { hostname, port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: hostname,
        port,
        agent: false, // a connection per request: the server closes one after a 431
        method,
        path,
        headers: body
          ? { 'content-type': 'application/octet-stream', 'content-length': body.length }
          : {},
      },
      (res) => {
        let text = '';
        res.setEncoding('latin1');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** A GET PKIOperation whose message is `n` base64 characters. */
const getOf = (n: number) => `/scep?operation=PKIOperation&message=${'A'.repeat(n)}`;

describe('request size limits', () => {
  it('bodies over their route’s cap are 413; at the cap they are read and refused for what they are', async () => {
    for (const [path, cap] of [
      ['/scep?operation=PKIOperation', MAX_SCEP_BODY],
      [MDM_PATH, MAX_SYNCML_BODY],
      [DISCOVERY_PATH, MAX_MDE2_BODY],
    ] as const) {
      const over = await send('POST', path, new Uint8Array(cap + 1).fill(0x41));
      assert.equal(over.status, 413, `${path}: ${over.text}`);
      // At the cap the body is read and refused as what it is: not SCEP (400), not SyncML
      // (400), not SOAP (a SOAP fault, which the SOAP HTTP binding sends with 500).
      const at = await send('POST', path, new Uint8Array(cap).fill(0x41));
      if (path === DISCOVERY_PATH) {
        assert.equal(at.status, 500, path);
        assert.match(at.text, /Fault/);
      } else assert.equal(at.status, 400, `${path}: ${at.text}`);
    }
  });

  it('a SCEP GET with a URL over its cap is 414; over Node’s header limit 431; then it still serves', async () => {
    const tooLong = await send('GET', getOf(MAX_SCEP_URL));
    assert.equal(tooLong.status, 414, tooLong.text);
    const withinCap = await send('GET', getOf(MAX_SCEP_URL - 64));
    assert.equal(withinCap.status, 400, 'within the cap it is decoded (and is no pkiMessage)');
    const huge = await send('GET', getOf(64 * 1024));
    assert.equal(huge.status, 431);
    const caps = await send('GET', '/scep?operation=GetCACaps');
    assert.equal(caps.status, 200);
    assert.match(caps.text, /POSTPKIOperation/);
  });
});
