// An in-process filter for Sentinel, written as a Fastify plugin (see docs/architecture.md,
// "Writing a plugin filter"). Used by examples/plugin.kdl:
//
//   filter "stamp" { type "plugin"; module "./plugins/header-stamp.mjs"; config { header "x-stamp"; value "v1" } }
//
// It stamps a header on the request sent upstream and on the response, refuses requests that
// carry `x-stamp-block` (a block decision), and counts the requests it saw (exposed as a
// decoration of its own encapsulated context, released by an onClose hook).

/** Config problems become a config error naming this module (also at `sentinel test` time). */
export function validate(config) {
  const problems = [];
  if (typeof config.value !== 'string' || config.value === '') problems.push('value: a non-empty string is required');
  if (config.header !== undefined && !/^[a-z0-9-]+$/i.test(String(config.header))) problems.push(`header: not a header name: ${JSON.stringify(config.header)}`);
  return problems;
}

export default async function headerStamp(app, opts) {
  const header = String(opts.config.header ?? 'x-stamp').toLowerCase();
  const value = String(opts.config.value);
  app.decorate('stampCount', 0);
  app.addHook('onClose', async () => {
    opts.log.info({ stamped: app.stampCount }, 'header-stamp: generation closed');
  });

  opts.filter({
    onRequest(ctx) {
      if (ctx.upstreamHeaders['x-stamp-block'] !== undefined) {
        return { status: 403, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'Blocked by header-stamp', blockReason: 'header_stamp' };
      }
      app.stampCount++;
      ctx.upstreamHeaders[header] = value;
      return undefined;
    },
    onResponse(_ctx, res) {
      res.headers[header] = value;
    },
  });
}
