import { test } from 'node:test';
import { startUpstream } from '../helpers/upstream.ts';
import { gatewayFrom } from '../helpers/gateway.ts';
import { rawExchange } from '../helpers/raw-http.ts';

test('probe', async () => {
  const up = await startUpstream();
  const { gw, url } = await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0"; } }
routes {
  route "admin" { matches { path-prefix "/admin" }; upstream "backend"; allow-from "192.0.2.1/32" }
  route "hostonly" { matches { host "internal.example"; path-prefix "/" }; upstream "backend"; allow-from "192.0.2.1/32" }
  route "main" { matches { path-prefix "/" }; upstream "backend" }
}
upstreams { upstream "backend" { target "${up.address}"; } }
`);
  const port = Number(new URL(url()).port);
  const H = 'Host: a.example\r\n';
  const SM = 'GET /smuggled HTTP/1.1\r\nHost: a.example\r\n\r\n';
  const probes: [string, string][] = [
    ['TE chunked, identity', `POST /p HTTP/1.1\r\n${H}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n${SM}`],
    ['TE identity, chunked', `POST /p HTTP/1.1\r\n${H}Transfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n${SM}`],
    ['TE tab', `POST /p HTTP/1.1\r\n${H}Transfer-Encoding:\tchunked\r\n\r\n0\r\n\r\n${SM}`],
    ['TE trailing tab', `POST /p HTTP/1.1\r\n${H}Transfer-Encoding: chunked\t\r\n\r\n0\r\n\r\n${SM}`],
    ['TE space before colon', `POST /p HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n${SM}`],
    ['TE Chunked case', `POST /p HTTP/1.1\r\n${H}Transfer-Encoding: ChUnKeD\r\n\r\n0\r\n\r\n${SM}`],
    ['TE xchunked', `POST /p HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n${SM}`],
    ['TE chunked + CL', `POST /p HTTP/1.1\r\n${H}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SM}`],
    ['TE vertical tab', `POST /p HTTP/1.1\r\n${H}Transfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n${SM}`],
    ['TE obs-fold', `POST /p HTTP/1.1\r\n${H}Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n${SM}`],
    ['TE empty + CL', `POST /p HTTP/1.1\r\n${H}Transfer-Encoding:\r\nContent-Length: 3\r\n\r\nabc${SM}`],
    ['dup CL same', `POST /p HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc${SM}`],
    ['dup CL diff', `POST /p HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 30\r\n\r\nabc${SM}`],
    ['CL list', `POST /p HTTP/1.1\r\n${H}Content-Length: 3, 3\r\n\r\nabc${SM}`],
    ['CL leading zeros', `POST /p HTTP/1.1\r\n${H}Content-Length: 0003\r\n\r\nabc${SM}`],
    ['CL plus', `POST /p HTTP/1.1\r\n${H}Content-Length: +3\r\n\r\nabc${SM}`],
    ['CL hex', `POST /p HTTP/1.1\r\n${H}Content-Length: 0x3\r\n\r\nabc${SM}`],
    ['chunk size overflow', `POST /p HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nffffffffffffffff3\r\nabc\r\n0\r\n\r\n${SM}`],
    ['chunk leading zeros', `POST /p HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n00000003\r\nabc\r\n0\r\n\r\n${SM}`],
    ['chunk ext bad char', `POST /p HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3;a=\x01b\r\nabc\r\n0\r\n\r\n${SM}`],
    ['chunk ext bare LF', `POST /p HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3;a\nxx\r\nabc\r\n0\r\n\r\n${SM}`],
    ['chunk bare LF after size', `POST /p HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n${SM}`],
    ['chunk data bare LF', `POST /p HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n${SM}`],
    ['chunk size space', `POST /p HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n${SM}`],
    ['chunk negative', `POST /p HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n${SM}`],
    ['last chunk ext', `POST /p HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0;x=y\r\n\r\n${SM}`],
    ['trailer smuggle', `POST /p HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Internal-Token: s\r\nTransfer-Encoding: chunked\r\n\r\n${SM}`],
    ['header bare LF', `POST /p HTTP/1.1\n${H}Content-Length: 3\n\nabc${SM}`],
    ['header bare CR', `POST /p HTTP/1.1\r\nHost: a.example\rX-A: b\r\nContent-Length: 3\r\n\r\nabc${SM}`],
    ['GET with CL', `GET /p HTTP/1.1\r\n${H}Content-Length: ${SM.length}\r\n\r\n${SM}`],
    ['HEAD with CL body', `HEAD /p HTTP/1.1\r\n${H}Content-Length: ${SM.length}\r\n\r\n${SM}`],
    ['1.0 keepalive CL', `POST /p HTTP/1.0\r\n${H}Connection: keep-alive\r\nContent-Length: 3\r\n\r\nabc${SM}`],
    ['Expect smuggle', `POST /p HTTP/1.1\r\n${H}Expect: 100-continue\r\nContent-Length: 3\r\n\r\nabc${SM}`],
    ['null in header value', `GET /p HTTP/1.1\r\n${H}X-A: a\x00b\r\n\r\n`],
    ['space in header name', `GET /p HTTP/1.1\r\n${H}X A: b\r\n\r\n`],
    ['request line double space', `GET  /p HTTP/1.1\r\n${H}\r\n`],
    ['request line tab', `GET\t/p HTTP/1.1\r\n${H}\r\n`],
    ['lowercase version', `GET /p http/1.1\r\n${H}\r\n`],
    ['absolute target host mismatch', `GET http://internal.example/x HTTP/1.1\r\n${H}\r\n`],
    ['absolute target other', `GET http://a.example/admin HTTP/1.1\r\nHost: internal.example\r\n\r\n`],
    ['host trailing dot', `GET /x HTTP/1.1\r\nHost: internal.example.\r\n\r\n`],
    ['host upper', `GET /x HTTP/1.1\r\nHost: INTERNAL.example:80\r\n\r\n`],
    ['host userinfo', `GET /x HTTP/1.1\r\nHost: a@internal.example\r\n\r\n`],
    ['host dup', `GET /x HTTP/1.1\r\nHost: a.example\r\nHost: internal.example\r\n\r\n`],
    ['host comma', `GET /x HTTP/1.1\r\nHost: a.example, internal.example\r\n\r\n`],
    ['host space', `GET /x HTTP/1.1\r\nHost: internal.example x\r\n\r\n`],
    ['host tab trailing', `GET /x HTTP/1.1\r\nHost: internal.example\t\r\n\r\n`],
    ['host empty', `GET /x HTTP/1.1\r\nHost: \r\n\r\n`],
    ['host port 0', `GET /x HTTP/1.1\r\nHost: internal.example:0\r\n\r\n`],
    ['host percent', `GET /x HTTP/1.1\r\nHost: internal%2eexample\r\n\r\n`],
    ['host ip', `GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`],
    ['X-Forwarded-Host', `GET /x HTTP/1.1\r\n${H}X-Forwarded-Host: internal.example\r\n\r\n`],
    ['X-Host', `GET /x HTTP/1.1\r\n${H}X-Host: internal.example\r\n\r\n`],
  ];
  const paths = ['/%2e%2e/admin', '/x/%2e%2e/admin', '/x/..%2fadmin', '/admin%2fx', '/x/%252e%252e/admin', '/admin;x', '/ADMIN', '/Admin/x', '//admin', '/./admin', '/x/../admin', '/%61dmin', '\\admin', '/x\\..\\admin', '/%c0%ae%c0%ae/admin', '/x/%2e%2e%2fadmin', '/admin%00', '/admin%20', '/admin%09', '/admin/', '/admin.', '/admin..', '/x/.%2e/admin', '/x/%2E./admin', '/admin%23x', '/admi%6e', '/%2561dmin', '/admin?x', '/x/.../admin', '/x/.. /admin', '/admin%2Fx', '/x/..;/admin', '/%2fadmin', '/%5cadmin', '/admin%ef%bc%8f', '/x/%u002e%u002e/admin'];
  for (const p of paths) probes.push([`path ${p}`, `GET ${p} HTTP/1.1\r\n${H}\r\n`]);
  for (const [what, bytes] of probes) {
    const before = up.seen.length;
    const r = await rawExchange(port, bytes, { responses: 2, waitMs: 1500 });
    const got = up.seen.slice(before).map((s) => `${s.method} ${s.url} host=${s.headers.host} body=${s.body.length}${s.headers['transfer-encoding'] ? ' te=' + s.headers['transfer-encoding'] : ''}`);
    console.log(`${what.padEnd(32)} ${JSON.stringify(r.statuses)} closed=${r.closed} up=${JSON.stringify(got)}`);
  }
  await gw.close();
  await up.close();
});
