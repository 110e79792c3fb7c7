// Config files generated for the origin and the native peers (nginx, HAProxy). Everything runs
// in the foreground as one process on 127.0.0.1, writes only into the run's temp dir and logs
// nothing per request (as the Node peers and the Sentinel passthrough config).

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const SMALL_PATH = '/small';
export const LARGE_PATH = '/large';
export const SMALL_BYTES = 100;
export const LARGE_BYTES = 16 * 1024;

/** A body of exactly `n` bytes: letters, then a newline. */
export function body(n: number): string {
  let s = '';
  const alphabet = 'abcdefghijklmnopqrstuvwxyz';
  while (s.length < n - 1) s += alphabet;
  return s.slice(0, n - 1) + '\n';
}

/** Settings shared by the two nginx roles: one process, no daemon, temp files in `dir`. */
function nginxMain(dir: string): string {
  return `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log stderr warn;
events { worker_connections 4096; multi_accept on; }
`;
}

/** The http-block settings every nginx bench config shares (also bench/waf-modsec.ts). */
export function nginxHttpCommon(dir: string): string {
  return `  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
`;
}

/** The origin: 100 B bodies answered by `return 200`; the 16 KiB body is a file (nginx caps a
 * config string at 4 KiB), kept open and sent with sendfile, so it is served from page cache.
 * The caller writes `${dir}/large.body` with writeOriginFiles(). `extraLocations`: more
 * location blocks (bench/cache.ts adds cacheable paths and stub_status). */
export function originNginxConf(port: number, dir: string, extraLocations = ''): string {
  return `${nginxMain(dir)}http {
${nginxHttpCommon(dir)}  default_type text/plain;
  sendfile on;
  open_file_cache max=16;
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location = ${SMALL_PATH} { return 200 "${body(SMALL_BYTES)}"; }
    location = ${LARGE_PATH} { alias ${dir}/large.body; }
    location / { return 200 "${body(SMALL_BYTES)}"; }
${extraLocations}  }
}
`;
}

export function writeOriginFiles(dir: string): void {
  writeFileSync(join(dir, 'large.body'), body(LARGE_BYTES));
}

/** nginx as a reverse proxy with a keep-alive upstream pool. */
export function nginxProxyConf(port: number, originPort: number, dir: string): string {
  return `${nginxMain(dir)}http {
${nginxHttpCommon(dir)}  upstream origin {
    server 127.0.0.1:${originPort};
    keepalive 128;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
}

/** HAProxy in HTTP mode, one thread, connection reuse to the origin. */
export function haproxyConf(port: number, originPort: number): string {
  return `global
  nbthread 1
  # HAProxy wants ~2 fds per connection; stay under the default nofile limit.
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
  http-reuse always
frontend bench
  bind 127.0.0.1:${port}
  default_backend origin
backend origin
  server origin 127.0.0.1:${originPort}
`;
}
