// `traceparent` registered in undici's well-known header names (src/upstream/undici-names.ts):
// a tracer's start registers it, the upstream still gets the header as written, and undici still
// refuses a value with a control character under that name (only the name's lookup is skipped).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { Client, errors } from 'undici';
import { Tracing } from '../../../plugins/tracing/tracer.ts';

const names = (createRequire(import.meta.url)('undici/lib/core/constants.js') as { headerNameLowerCasedRecord: Record<string, string | undefined> }).headerNameLowerCasedRecord;

test("a tracer's start registers traceparent in undici's header names; the value is still checked", async () => {
  assert.equal(names.traceparent, undefined, 'not known before a tracer starts (this file runs alone)');
  const tracing = new Tracing(
    { url: 'http://127.0.0.1:1/v1/traces', protocol: 'http/protobuf', samplingRate: 0, serviceName: 's', maxQueueSize: 10, maxExportBatchSize: 10, scheduledDelayMs: 3_600_000, exportTimeoutMs: 1000, exportThread: false },
    { instanceId: 'i', version: '0' },
    { exported: () => undefined, dropped: () => undefined },
    'http',
    (_batch, done) => done({}),
  );
  assert.equal(names.traceparent, 'traceparent');

  let seen: IncomingHttpHeaders | undefined;
  const server = createServer((req, res) => {
    seen = req.headers;
    res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = new Client(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  try {
    const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00';
    const r = await client.request({ path: '/', method: 'GET', headers: { traceparent: tp } });
    await r.body.text();
    assert.equal(seen?.traceparent, tp, 'the upstream gets the header as written');
    await assert.rejects(
      client.request({ path: '/', method: 'GET', headers: { traceparent: `${tp}\r\nx-injected: 1` } }),
      (err: unknown) => err instanceof errors.InvalidArgumentError,
      'a value with CR/LF is refused under the registered name',
    );
  } finally {
    await client.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await tracing.shutdown(100);
  }
});
