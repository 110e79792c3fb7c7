#!/usr/bin/env node
// Container HEALTHCHECK without curl or a shell: GET $SENTINEL_HEALTHCHECK_URL (default the
// gateway's /_/health on port 8080), exit 0 on a 2xx answer within 3 s, else 1.
const url = process.env.SENTINEL_HEALTHCHECK_URL ?? 'http://127.0.0.1:8080/_/health';
try {
  const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
  process.exit(res.ok ? 0 : 1);
} catch {
  process.exit(1);
}
