// The export thread's program (started by export-thread.ts): one OtlpHttpTransport of
// otlp-http.ts per tracing generation, in a worker thread of its own, so the exporter's undici
// requests run in their own V8 isolate and never share inline caches with the forwarder's
// (docs/tracing.md "Session 21"). Messages: export-thread.ts's ToThread and FromThread.
import { parentPort } from 'node:worker_threads';
import { OtlpHttpTransport, type OtlpHttpOptions } from './otlp-http.ts';
import type { FromThread, ToThread } from './export-thread.ts';

const port = parentPort;
if (!port) throw new Error('otlp-worker.ts runs only as a worker thread (export-thread.ts)');

const transports = new Map<number, OtlpHttpTransport>();
const reply = (m: FromThread) => port.postMessage(m);
const asBuffer = (b: Uint8Array | undefined) => (b === undefined ? undefined : Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/** The options as sent: a Buffer arrives as a plain Uint8Array after the structured clone. */
function revive(o: OtlpHttpOptions): OtlpHttpOptions {
  const tls: { ca?: Buffer; cert?: Buffer; key?: Buffer } = {};
  for (const k of ['ca', 'cert', 'key'] as const) {
    const b = asBuffer(o.environment.tls[k]);
    if (b) tls[k] = b;
  }
  return { ...o, environment: { ...o.environment, tls } };
}

port.on('message', (m: ToThread) => {
  if ('open' in m) {
    transports.set(m.t, new OtlpHttpTransport(revive(m.open)));
    return;
  }
  const transport = transports.get(m.t);
  if ('close' in m || 'destroy' in m) {
    transports.delete(m.t);
    const ended = transport === undefined ? Promise.resolve() : 'close' in m ? transport.close() : transport.destroy();
    void ended.finally(() => reply({ t: m.t, closed: true }));
    return;
  }
  if (transport === undefined) {
    reply({ t: m.t, id: m.id, outcome: { error: 'the export thread has no such exporter (closed)' } });
    return;
  }
  const started = performance.timeOrigin + performance.now();
  transport.send(m.body, (outcome) => reply({ t: m.t, id: m.id, outcome }), Math.max(0, started - m.sentAt));
});
