import { test } from 'node:test';
import assert from 'node:assert/strict';
import { forwardHeaders, responseHeaders, applyHeaderOps, normaliseIdentityHeaders, wellFormedProxyValue, isForwardedList, DEFAULT_TRUSTED_PROXY_HEADERS, UNTRUSTED_PEER, type PeerTrust } from '../../../src/server/headers.ts';
import { randomBytes } from 'node:crypto';
import { base58Randoms, nextTinyflake, pickTraceId, tinyflake, traceIdFormat } from '../../../src/server/trace-id.ts';
import { classifyUpstreamError } from '../../../src/errors/index.ts';

test('hop-by-hop and Connection-listed headers are stripped; X-Forwarded-* set', () => {
  const out = forwardHeaders({
    headers: { host: 'example.com', connection: 'keep-alive, X-Secret', 'x-secret': '1', 'keep-alive': 'timeout=5', te: 'trailers', 'x-keep': 'yes', 'x-internal-token': 'forged', 'x-forwarded-for': '6.6.6.6' },
    clientIp: '10.0.0.1',
    peerIp: '10.0.0.1',
    trustedPeer: false,
    protocol: 'http',
    traceId: 'abc',
  });
  assert.equal(out['x-secret'], undefined);
  assert.equal(out.connection, undefined);
  assert.equal(out['keep-alive'], undefined);
  assert.equal(out['x-internal-token'], undefined);
  assert.equal(out.te, 'trailers');
  assert.equal(out['x-keep'], 'yes');
  assert.equal(out['x-forwarded-for'], '10.0.0.1', 'untrusted peer: client XFF is replaced');
  assert.equal(out['x-forwarded-proto'], 'http');
  assert.equal(out['x-forwarded-host'], 'example.com');
  assert.equal(out['x-correlation-id'], 'abc');
  assert.equal(out['x-forwarded-by'], 'Sentinel');
});

/** As the gateway does it: the front door normalises the identity headers, then forwardHeaders builds. */
function upstreamOf(headers: Record<string, string>, trust: PeerTrust, clientIp: string, peerIp: string) {
  const h: Record<string, string | string[] | undefined> = { ...headers };
  normaliseIdentityHeaders(h, trust);
  return forwardHeaders({ headers: h, clientIp, peerIp, trustedPeer: trust.trustedPeer, protocol: 'http', traceId: 't' });
}
const ALL_KEPT: PeerTrust = { trustedPeer: true, kept: new Set(['x-forwarded-proto', 'x-forwarded-host', 'forwarded', 'true-client-ip', 'x-forwarded-port', 'x-forwarded-prefix']) };
const DEFAULT_KEPT: PeerTrust = { trustedPeer: true, kept: DEFAULT_TRUSTED_PROXY_HEADERS };

test('a trusted peer keeps X-Forwarded-For and the direct peer (not the resolved client) is appended', () => {
  // as the gateway calls it: peer 10.0.0.9 is a trusted proxy, the client it reports is 1.2.3.4
  const out = upstreamOf({ 'x-forwarded-for': '1.2.3.4', 'x-forwarded-proto': 'https', 'x-real-ip': '1.2.3.4', forwarded: 'for=1.2.3.4' }, ALL_KEPT, '1.2.3.4', '10.0.0.9');
  assert.equal(out['x-forwarded-for'], '1.2.3.4, 10.0.0.9');
  assert.equal(out['x-forwarded-proto'], 'https');
  assert.equal(out['x-real-ip'], '1.2.3.4');
  assert.equal(out.forwarded, 'for=1.2.3.4');
});

test('identity and URL-override headers from an untrusted peer are dropped or overwritten', () => {
  const spoofed = {
    host: 'example.com',
    'x-real-ip': '127.0.0.1',
    forwarded: 'for=127.0.0.1;host=internal',
    'true-client-ip': '127.0.0.1',
    'x-client-ip': '127.0.0.1',
    'cf-connecting-ip': '127.0.0.1',
    'x-cluster-client-ip': '127.0.0.1',
    'x-original-url': '/admin',
    'x-rewrite-url': '/admin',
    'x-forwarded-for': '127.0.0.1',
    'x-forwarded-host': 'internal',
    'x-forwarded-proto': 'https',
    'x-forwarded-port': '443',
    'x-forwarded-prefix': '/admin',
  };
  const out = upstreamOf(spoofed, UNTRUSTED_PEER, '203.0.113.5', '203.0.113.5');
  for (const name of ['forwarded', 'true-client-ip', 'x-client-ip', 'cf-connecting-ip', 'x-cluster-client-ip', 'x-original-url', 'x-rewrite-url', 'x-forwarded-port', 'x-forwarded-prefix']) assert.equal(out[name], undefined, name);
  assert.equal(out['x-real-ip'], '203.0.113.5');
  assert.equal(out['x-forwarded-for'], '203.0.113.5');
  assert.equal(out['x-forwarded-host'], 'example.com');
  assert.equal(out['x-forwarded-proto'], 'http');
  // URL overrides are dropped even from trusted proxies
  const trusted = upstreamOf(spoofed, ALL_KEPT, '127.0.0.1', '10.0.0.1');
  assert.equal(trusted['x-original-url'], undefined);
  assert.equal(trusted['x-rewrite-url'], undefined);
  assert.equal(trusted['true-client-ip'], '127.0.0.1');
  assert.equal(trusted['x-forwarded-host'], 'internal');
  // session 22: by default a trusted proxy keeps only X-Forwarded-Proto and -Port (which load balancers write)
  const byDefault = upstreamOf(spoofed, DEFAULT_KEPT, '127.0.0.1', '10.0.0.1');
  assert.deepEqual([byDefault['x-forwarded-proto'], byDefault['x-forwarded-port'], byDefault['x-forwarded-host'], byDefault.forwarded, byDefault['true-client-ip'], byDefault['x-forwarded-prefix']], ['https', '443', 'example.com', undefined, undefined, undefined]);
  // X-Real-IP is the resolved client even from a trusted proxy (one that does not write it passes the client's on)
  const passed = upstreamOf({ 'x-real-ip': '6.6.6.6', 'x-forwarded-for': '203.0.113.5' }, ALL_KEPT, '203.0.113.5', '10.0.0.1');
  assert.equal(passed['x-real-ip'], '203.0.113.5');
});

test('a kept identity header must be one well-formed value', () => {
  const table: [string, string, string | undefined][] = [
    ['x-forwarded-proto', 'https', 'https'],
    ['x-forwarded-proto', ' HTTPS ', 'https'],
    ['x-forwarded-proto', 'https, http', undefined],
    ['x-forwarded-proto', 'javascript', undefined],
    ['x-forwarded-proto', '', undefined],
    ['x-forwarded-host', 'Shop.Example.', 'shop.example'],
    ['x-forwarded-host', 'shop.example:8443', 'shop.example:8443'],
    ['x-forwarded-host', '[2001:db8::1]:443', '[2001:db8::1]:443'],
    ['x-forwarded-host', 'a.example, evil.example', undefined],
    ['x-forwarded-host', 'evil.example/path', undefined],
    ['x-forwarded-host', 'user@evil.example', undefined],
    ['x-forwarded-host', 'evil.example:99999', undefined],
    ['x-forwarded-host', '', undefined],
    ['x-forwarded-port', '443', '443'],
    ['x-forwarded-port', '0443', '443'],
    ['x-forwarded-port', '0', undefined],
    ['x-forwarded-port', '70000', undefined],
    ['x-forwarded-port', '443, 80', undefined],
    ['forwarded', 'for=192.0.2.60;proto=http;by=203.0.113.43', 'for=192.0.2.60;proto=http;by=203.0.113.43'],
    ['forwarded', 'for="[2001:db8:cafe::17]:4711"', 'for="[2001:db8:cafe::17]:4711"'],
    ['forwarded', 'for=192.0.2.43, for=198.51.100.17;host=a.example', 'for=192.0.2.43, for=198.51.100.17;host=a.example'],
    ['forwarded', 'For=unknown;Proto=HTTPS;host="a.example:8080"', 'For=unknown;Proto=HTTPS;host="a.example:8080"'],
    ['forwarded', 'for="_hidden:_port"', 'for="_hidden:_port"'],
    ['forwarded', 'for=_hidden:_port', undefined], // ':' is no token character: RFC 7239 quotes it
    ['forwarded', 'host=evil.example/x', undefined],
    ['forwarded', 'host=a.example;host=evil.example', undefined],
    ['forwarded', 'proto=gopher', undefined],
    ['forwarded', 'for=not an address', undefined],
    ['forwarded', 'for=1.2.3.4;', undefined],
    ['forwarded', 'for="1.2.3.4', undefined],
    ['forwarded', 'garbage', undefined],
    ['x-forwarded-prefix', '/app', '/app'],
  ];
  for (const [name, value, want] of table) assert.equal(wellFormedProxyValue(name, value), want, `${name}: ${value}`);
  assert.equal(isForwardedList('for=1.2.3.4,for=5.6.7.8'), true);
});

test('Connection naming Host does not drop Host', () => {
  const out = forwardHeaders({ headers: { host: 'example.com', connection: 'close, host' }, clientIp: '1.1.1.1', peerIp: '1.1.1.1', trustedPeer: false, protocol: 'http', traceId: 't' });
  assert.equal(out.host, 'example.com');
});

test('response hop-by-hop headers are dropped', () => {
  const out = responseHeaders({ 'transfer-encoding': 'chunked', connection: 'close, x-a', 'x-a': '1', 'content-type': 'text/plain' });
  assert.deepEqual(out, { 'content-type': 'text/plain' });
});

test('header ops apply rename -> set -> add -> remove', () => {
  const h: Record<string, string | string[] | undefined> = { 'x-old': 'v', 'x-drop': '1', 'x-multi': 'a' };
  applyHeaderOps(h, { rename: [['X-Old', 'X-New']], set: [['X-Set', 's']], add: [['X-Multi', 'b']], remove: ['X-Drop'] });
  assert.deepEqual(h, { 'x-new': 'v', 'x-set': 's', 'x-multi': ['a', 'b'] });
});

test('trace ids: reuse incoming, else TinyFlake (11 base58 chars) or UUID', () => {
  assert.equal(pickTraceId({ 'x-request-id': 'req-1' }, 'tinyflake'), 'req-1');
  assert.equal(pickTraceId({ 'x-trace-id': 't', 'x-request-id': 'r' }, 'tinyflake'), 't');
  assert.match(pickTraceId({ 'x-request-id': 'bad id with spaces' }, 'tinyflake'), /^[1-9A-HJ-NP-Za-km-z]{11}$/);
  // '#' is reserved for agent correlation suffixes (`<id>#2`): such client ids are replaced
  assert.match(pickTraceId({ 'x-request-id': 'abc#2' }, 'tinyflake'), /^[1-9A-HJ-NP-Za-km-z]{11}$/);
  assert.match(pickTraceId({ 'x-correlation-id': '#' }, 'tinyflake'), /^[1-9A-HJ-NP-Za-km-z]{11}$/);
  assert.equal(pickTraceId({ 'x-request-id': 'a~b!"$' }, 'tinyflake'), 'a~b!"$');
  assert.match(pickTraceId({}, 'uuid'), /^[0-9a-f-]{36}$/);
  assert.equal(tinyflake(0, Buffer.alloc(6)), '11111111111');
  assert.equal(traceIdFormat('uuidv4'), 'uuid');
  assert.equal(traceIdFormat('whatever'), 'tinyflake');
});

test('pooled TinyFlakes: the random part is what tinyflake() makes of the same 6 bytes; the time part the second', () => {
  // edge values: 0, 58^8 - 1 and 58^8 (the 48 bits exceed 8 Base58 digits: both keep the last 8), 2^48 - 1
  const edges = [0, 58 ** 8 - 1, 58 ** 8, 2 ** 48 - 1];
  const bytes = Buffer.concat([...edges.map((n) => Buffer.from(n.toString(16).padStart(12, '0'), 'hex')), randomBytes(6 * 500)]);
  const count = bytes.length / 6;
  const out = new Uint8Array(8 * count);
  base58Randoms(new DataView(bytes.buffer, bytes.byteOffset, bytes.length), count, out);
  for (let i = 0; i < count; i++) {
    const want = tinyflake(0, bytes.subarray(6 * i, 6 * i + 6)).slice(3);
    assert.equal(Buffer.from(out.subarray(8 * i, 8 * i + 8)).toString('latin1'), want, `id ${i}`);
  }
  assert.equal(Buffer.from(out.subarray(0, 8)).toString('latin1'), '11111111');
  const seen = new Set<string>();
  const now = Date.UTC(2026, 11, 5, 16, 0, 0);
  for (let i = 0; i < 2000; i++) {
    // several pool refills and a change of second on the way
    const t = now + i * 7;
    const id = nextTinyflake(t);
    assert.match(id, /^[1-9A-HJ-NP-Za-km-z]{11}$/);
    assert.equal(id.slice(0, 3), tinyflake(t, Buffer.alloc(6)).slice(0, 3), `time part at ${t}`);
    seen.add(id.slice(3));
  }
  assert.ok(seen.size >= 1999, 'random parts do not repeat');
});

test('error taxonomy: refused/reset 502, timeouts 504', () => {
  const table: [unknown, number, string][] = [
    [{ code: 'ECONNREFUSED' }, 502, 'connect_refused'],
    [{ code: 'ECONNRESET' }, 502, 'reset'],
    [{ code: 'UND_ERR_SOCKET' }, 502, 'reset'],
    [{ code: 'UND_ERR_CONNECT_TIMEOUT' }, 504, 'connect_timeout'],
    [{ code: 'UND_ERR_HEADERS_TIMEOUT' }, 504, 'timeout'],
    [{ code: 'UND_ERR_BODY_TIMEOUT' }, 504, 'timeout'],
    [{ cause: { code: 'ECONNREFUSED' } }, 502, 'connect_refused'],
    [new Error('weird'), 502, 'other'],
  ];
  for (const [err, status, reason] of table) {
    const c = classifyUpstreamError(err);
    assert.equal(c.status, status);
    assert.equal(c.reason, reason);
    assert.doesNotMatch(c.message, /127\.0\.0\.1|:\d{2,5}/, 'no addresses in client messages');
  }
});
