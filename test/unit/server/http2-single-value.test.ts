// HTTP2_SINGLE_VALUE is Node's own list (node:internal/http2/util kSingleValueHeaders): each name
// with two values makes an HTTP/2 response's writeHead throw, and a list header does not. Turns
// red when a Node upgrade changes the list (docs/security.md, "Session 28 audit").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { HTTP2_SINGLE_VALUE, singleValuedForHttp2 } from '../../../src/server/headers.ts';

test("HTTP2_SINGLE_VALUE is the set of names Node's HTTP/2 writeHead takes one value of", async () => {
  const probed = [...HTTP2_SINGLE_VALUE, 'set-cookie', 'vary', 'cache-control', 'link', 'x-frame-options', 'server'];
  const refused: string[] = [];
  const server = http2.createServer((req, res) => {
    const name = req.url.slice(1);
    try {
      res.writeHead(200, { [name]: ['a', 'b'] });
      res.end();
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_HTTP2_HEADER_SINGLE_VALUE') refused.push(name);
      res.stream.close();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const c = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  for (const name of probed) {
    await new Promise<void>((r) => {
      const s = c.request({ ':path': `/${name}` });
      s.resume();
      s.on('close', () => r());
      s.on('error', () => undefined);
    });
  }
  c.close();
  await new Promise<void>((r) => server.close(() => r()));
  assert.deepEqual(refused.sort(), [...HTTP2_SINGLE_VALUE].sort());
});

test('singleValuedForHttp2 keeps the first value of a single-value name and leaves lists alone', () => {
  const h: Record<string, string | string[]> = { 'content-type': ['text/plain', 'text/html'], 'x-content-type-options': ['nosniff', 'nosniff'], 'set-cookie': ['a=1', 'b=2'], vary: 'accept' };
  singleValuedForHttp2(h);
  assert.deepEqual(h, { 'content-type': 'text/plain', 'x-content-type-options': 'nosniff', 'set-cookie': ['a=1', 'b=2'], vary: 'accept' });
});
