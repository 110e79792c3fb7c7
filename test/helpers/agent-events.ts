// The request metadata of a sample request_headers event, shared by the agent protocol tests.
import type { RequestMetadata } from '../../src/agent-protocol/messages.ts';

export const sampleMetadata = (over: Partial<RequestMetadata> = {}): RequestMetadata => ({
  correlation_id: 'c1',
  request_id: 'c1',
  client_ip: '127.0.0.1',
  client_port: 45678,
  server_name: 'example.test',
  protocol: 'HTTP/1.1',
  tls_version: null,
  tls_cipher: null,
  route_id: 'r',
  upstream_id: 'u',
  timestamp: '2026-12-05T15:49:55.123Z',
  traceparent: null,
  ...over,
});
