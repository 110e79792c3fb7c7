// A local OTLP/HTTP trace receiver for the tracing tests: it accepts what the exporter POSTs to
// /v1/traces, decodes it (ExportTraceServiceRequest in the protobuf encoding, application/x-protobuf,
// or the JSON one, application/json; anything else is refused with 415) and keeps the spans
// flat. The protobuf decoder is the test's own (a wire-format reader written from the .proto
// field numbers), independent of the gateway's encoder. Modes:
// `ok` answers 200 {}, `hang` accepts requests and never answers (a wedged collector); `delayMs`
// makes an `ok` collector slow.
import http from 'node:http';
import { gunzipSync } from 'node:zlib';
import type { AddressInfo } from 'node:net';
import { closeServer } from '../../helpers/upstream.ts';

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
  /** OTLP span flags (0 when absent) */
  flags: number;
  traceState: string | undefined;
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
          flags: Number(s.flags ?? 0),
          traceState: typeof s.traceState === 'string' ? s.traceState : undefined,
        });
      }
    }
  }
  return out;
}

// ---- OTLP/protobuf ---------------------------------------------------------------------------

/** One protobuf field: number, wire type and its value (varint as bigint, bytes, or fixed bytes). */
interface Field {
  no: number;
  wire: number;
  int: bigint;
  bytes: Buffer;
}

/** Every field of one message, in order. */
function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let off = 0;
  const varint = (): bigint => {
    let n = 0n;
    let shift = 0n;
    for (;;) {
      if (off >= buf.length) throw new Error('protobuf: truncated varint');
      const b = buf[off++]!;
      n |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return n;
      shift += 7n;
      if (shift > 63n) throw new Error('protobuf: varint longer than 10 bytes');
    }
  };
  const take = (n: number): Buffer => {
    if (off + n > buf.length) throw new Error('protobuf: truncated field');
    const b = buf.subarray(off, off + n);
    off += n;
    return b;
  };
  while (off < buf.length) {
    const key = Number(varint());
    const f: Field = { no: key >>> 3, wire: key & 7, int: 0n, bytes: Buffer.alloc(0) };
    if (f.wire === 0) f.int = varint();
    else if (f.wire === 1) f.bytes = take(8);
    else if (f.wire === 2) f.bytes = take(Number(varint()));
    else if (f.wire === 5) f.bytes = take(4);
    else throw new Error(`protobuf: wire type ${f.wire}`);
    out.push(f);
  }
  return out;
}

function protoValue(buf: Buffer): string | number | boolean {
  for (const f of fields(buf)) {
    if (f.no === 1 && f.wire === 2) return f.bytes.toString('utf8');
    if (f.no === 2 && f.wire === 0) return f.int !== 0n;
    if (f.no === 3 && f.wire === 0) return Number(BigInt.asIntN(64, f.int));
    if (f.no === 4 && f.wire === 1) return f.bytes.readDoubleLE(0);
  }
  throw new Error(`unsupported AnyValue ${buf.toString('hex')}`);
}

function protoAttributes(list: Field[]): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const kv of list) {
    const fs = fields(kv.bytes);
    const key = fs.find((f) => f.no === 1)!.bytes.toString('utf8');
    out[key] = protoValue(fs.find((f) => f.no === 2)!.bytes);
  }
  return out;
}

/** Decodes one OTLP/protobuf ExportTraceServiceRequest into flat spans. */
export function decodeProtoTraces(body: Buffer): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of fields(body).filter((f) => f.no === 1)) {
    const rsFields = fields(rs.bytes);
    const resourceMsg = rsFields.find((f) => f.no === 1);
    const resource = resourceMsg ? protoAttributes(fields(resourceMsg.bytes).filter((f) => f.no === 1)) : {};
    for (const ss of rsFields.filter((f) => f.no === 2)) {
      const ssFields = fields(ss.bytes);
      const scopeMsg = ssFields.find((f) => f.no === 1);
      const scope = scopeMsg ? (fields(scopeMsg.bytes).find((f) => f.no === 1)?.bytes.toString('utf8') ?? '') : '';
      for (const sp of ssFields.filter((f) => f.no === 2)) {
        const fs = fields(sp.bytes);
        const one = (no: number) => fs.find((f) => f.no === no);
        const status = one(15);
        const statusCode = status ? Number(fields(status.bytes).find((f) => f.no === 3)?.int ?? 0n) : 0;
        out.push({
          traceId: one(1)!.bytes.toString('hex'),
          spanId: one(2)!.bytes.toString('hex'),
          parentSpanId: one(4)?.bytes.toString('hex') ?? '',
          name: one(5)?.bytes.toString('utf8') ?? '',
          kind: Number(one(6)?.int ?? 0n),
          statusCode,
          startNs: one(7)!.bytes.readBigUInt64LE(0),
          endNs: one(8)!.bytes.readBigUInt64LE(0),
          attributes: protoAttributes(fs.filter((f) => f.no === 9)),
          resource,
          scope,
          flags: one(16)?.bytes.readUInt32LE(0) ?? 0,
          traceState: one(3)?.bytes.toString('utf8'),
        });
      }
    }
  }
  return out;
}

/** The scope version of a protobuf request (the test checks it once). */
export function protoScopeVersion(body: Buffer): string {
  const rs = fields(body).find((f) => f.no === 1)!;
  const ss = fields(rs.bytes).find((f) => f.no === 2)!;
  const scope = fields(ss.bytes).find((f) => f.no === 1)!;
  return fields(scope.bytes).find((f) => f.no === 2)?.bytes.toString('utf8') ?? '';
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
      const proto = type === 'application/x-protobuf';
      if (req.url !== '/v1/traces' || !(proto || type.startsWith('application/json'))) {
        res.writeHead(415).end();
        return;
      }
      c.spans.push(...(proto ? decodeProtoTraces(raw) : decodeTraces(JSON.parse(raw.toString('utf8')))));
      // an empty ExportTraceServiceResponse in the request's encoding
      const answer = () => res.writeHead(200, { 'content-type': type }).end(proto ? '' : '{}');
      if (delayMs > 0) setTimeout(answer, delayMs);
      else answer();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  c.port = (server.address() as AddressInfo).port;
  c.endpoint = `http://127.0.0.1:${c.port}`;
  c.close = () => closeServer(server);
  return c;
}
