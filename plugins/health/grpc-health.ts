// The standard gRPC health protocol (grpc.health.v1.Health/Check) over node:http2, with the two
// tiny protobuf messages encoded by hand:
//   HealthCheckRequest  { string service = 1; }
//   HealthCheckResponse { ServingStatus status = 1; }  // SERVING = 1
import { connect, constants, type ClientHttp2Session, type SecureClientSessionOptions } from 'node:http2';

export const SERVING = 1;

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n >>> 0;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return out;
}

/** gRPC length-prefixed message (uncompressed) carrying a HealthCheckRequest. */
export function encodeHealthRequest(service: string): Buffer {
  const name = Buffer.from(service, 'utf8');
  const message = name.length === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a, ...varint(name.length)]), name]);
  const frame = Buffer.alloc(5);
  frame.writeUInt32BE(message.length, 1);
  return Buffer.concat([frame, message]);
}

/** ServingStatus from a gRPC response body (first message), or undefined when malformed. */
export function decodeHealthResponse(body: Buffer): number | undefined {
  if (body.length < 5 || body[0] !== 0) return undefined; // compressed messages are not negotiated
  const len = body.readUInt32BE(1);
  if (body.length < 5 + len) return undefined;
  const msg = body.subarray(5, 5 + len);
  let status = 0; // proto3 default: UNKNOWN
  let i = 0;
  const readVarint = (): number | undefined => {
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (i >= msg.length) return undefined;
      const b = msg[i++]!;
      result |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result >>> 0;
    }
    return undefined;
  };
  while (i < msg.length) {
    const key = readVarint();
    if (key === undefined) return undefined;
    const field = key >>> 3;
    const wire = key & 7;
    if (wire === 0) {
      const v = readVarint();
      if (v === undefined) return undefined;
      if (field === 1) status = v;
    } else if (wire === 2) {
      const l = readVarint();
      if (l === undefined) return undefined;
      i += l;
    } else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else return undefined;
    if (i > msg.length) return undefined; // a field ran past the message
  }
  return status;
}

export interface GrpcCheckResult {
  ok: boolean;
  detail: string;
}

/** One Check call on a fresh HTTP/2 session (closed afterwards), bounded by `timeoutMs`. */
export function grpcHealthCheck(origin: string, service: string, timeoutMs: number, tls: SecureClientSessionOptions = {}): Promise<GrpcCheckResult> {
  return new Promise((resolve) => {
    let session: ClientHttp2Session | undefined;
    let settled = false;
    const finish = (ok: boolean, detail: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session?.destroy();
      resolve({ ok, detail });
    };
    const timer = setTimeout(() => finish(false, 'timeout'), timeoutMs);
    try {
      session = connect(origin, tls);
    } catch (e) {
      finish(false, (e as Error).message);
      return;
    }
    session.on('error', (e) => finish(false, e.message));
    const req = session.request({
      [constants.HTTP2_HEADER_METHOD]: 'POST',
      [constants.HTTP2_HEADER_PATH]: '/grpc.health.v1.Health/Check',
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    const chunks: Buffer[] = [];
    let grpcStatus: string | undefined;
    req.on('response', (headers) => {
      if (headers['grpc-status'] !== undefined) grpcStatus = String(headers['grpc-status']); // trailers-only
    });
    req.on('trailers', (trailers) => {
      grpcStatus = String(trailers['grpc-status']);
    });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', (e) => finish(false, e.message));
    req.on('end', () => {
      if (grpcStatus !== '0') return finish(false, `grpc-status ${grpcStatus ?? 'missing'}`);
      const status = decodeHealthResponse(Buffer.concat(chunks));
      if (status === SERVING) finish(true, 'SERVING');
      else finish(false, `serving status ${status ?? 'malformed'}`);
    });
    req.end(encodeHealthRequest(service));
  });
}
