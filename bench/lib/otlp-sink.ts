// The OTLP/HTTP sink of the tracing benches (bench/tracing.ts, bench/ab.ts --tracing): reads every
// batch and answers 200 with an empty ExportTraceServiceResponse, counting batches and bytes.
import http from 'node:http';

export interface OtlpSink {
  port: number;
  batches(): number;
  bytes(): number;
  reset(): void;
  close(): Promise<void>;
}

export async function startOtlpSink(): Promise<OtlpSink> {
  let batches = 0;
  let bytes = 0;
  const server = http.createServer((req, res) => {
    req.on('data', (c: Buffer) => (bytes += c.length));
    req.on('end', () => {
      batches++;
      const proto = req.headers['content-type'] === 'application/x-protobuf';
      res.writeHead(200, { 'content-type': proto ? 'application/x-protobuf' : 'application/json' }).end(proto ? '' : '{}');
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    batches: () => batches,
    bytes: () => bytes,
    reset: () => {
      batches = 0;
      bytes = 0;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
