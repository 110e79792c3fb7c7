// The request metadata a gateway sends with request_headers, for tests that talk to sentinel-waf
// directly (one fixed client, route "r", upstream "u").
export const requestMetadata = (id: string) => ({
  correlation_id: id,
  request_id: id,
  client_ip: '192.0.2.10',
  client_port: 50000,
  server_name: 'app.test',
  protocol: 'HTTP/1.1',
  tls_version: null,
  tls_cipher: null,
  route_id: 'r',
  upstream_id: 'u',
  timestamp: new Date().toISOString(),
  traceparent: null,
});
