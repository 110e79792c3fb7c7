// A local OTLP/HTTP trace receiver for the tracing tests: it accepts what the exporter POSTs to
// /v1/traces, decodes it (the OTLP JSON encoding, ExportTraceServiceRequest; a protobuf body is
// refused so the test notices if the exporter ever switches) and keeps the spans flat. Modes:
// `ok` answers 200 {}, `hang` accepts requests and never answers (a wedged collector); `delayMs`
// makes an `ok` collector slow.
import http from 'node:http';
import { gunzipSync } from 'node:zlib';
import type { AddressInfo } from 'node:net';

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client */
  kind: number;
  /** 0 unset, 1 ok, 2 error */
  statusCode: number;
  startNs: bigint;
  endNs: bigint;
  attributes: Record<string, string | number | boolean>;
  resource: Record<string, string | number | boolean>;
  scope: string;
}

export interface Collector {
  port: number;
  endpoint: string;
  spans: ReceivedSpan[];
  /** export requests received (including ones a hanging collector never answered) */
  requests: number;
  contentTypes: string[];
  close(): Promise<void>;
}

interface AnyValue {
  stringValue?: string;
  intValue?: number | string;
  doubleValue?: number;
  boolValue?: boolean;
}
interface KeyValue {
  key: string;
  value: AnyValue;
}

function value(v: AnyValue): string | number | boolean {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.boolValue !== undefined) return v.boolValue;
  throw new Error(`unsupported attribute value ${JSON.stringify(v)}`);
}

function attrs(list: KeyValue[] | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const kv of list ?? []) out[kv.key] = value(kv.value);
  return out;
}

/** Decodes one OTLP/JSON ExportTraceServiceRequest into flat spans. */
export function decodeTraces(body: unknown): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  const req = body as { resourceSpans?: { resource?: { attributes?: KeyValue[] }; scopeSpans?: { scope?: { name?: string }; spans?: Record<string, unknown>[] }[] }[] };
  for (const rs of req.resourceSpans ?? []) {
    const resource = attrs(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        out.push({
          traceId: String(s.traceId),
          spanId: String(s.spanId),
          parentSpanId: typeof s.parentSpanId === 'string' ? s.parentSpanId : '',
          name: String(s.name),
          kind: Number(s.kind),
          statusCode: Number((s.status as { code?: number } | undefined)?.code ?? 0),
          startNs: BigInt(s.startTimeUnixNano as string),
          endNs: BigInt(s.endTimeUnixNano as string),
          attributes: attrs(s.attributes as KeyValue[] | undefined),
          resource,
          scope: ss.scope?.name ?? '',
        });
      }
    }
  }
  return out;
}

export async function startCollector(mode: 'ok' | 'hang' = 'ok', delayMs = 0): Promise<Collector> {
  const c: Collector = { port: 0, endpoint: '', spans: [], requests: 0, contentTypes: [], close: async () => undefined };
  const server = http.createServer((req, res) => {
    c.requests++;
    if (mode === 'hang') {
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (b: Buffer) => chunks.push(b));
    req.on('end', () => {
      let raw = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') raw = gunzipSync(raw);
      const type = req.headers['content-type'] ?? '';
      c.contentTypes.push(type);
      if (req.url !== '/v1/traces' || !type.startsWith('application/json')) {
        res.writeHead(415).end();
        return;
      }
      c.spans.push(...decodeTraces(JSON.parse(raw.toString('utf8'))));
      const answer = () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      if (delayMs > 0) setTimeout(answer, delayMs);
      else answer();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  c.port = (server.address() as AddressInfo).port;
  c.endpoint = `http://127.0.0.1:${c.port}`;
  c.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return c;
}
