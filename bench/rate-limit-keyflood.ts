// Key flood: N distinct client keys (default 1,000,000) through one local rate-limit filter with
// max-keys 100000, to show memory stays bounded. Prints RSS / heap before and after, the key
// count, evictions and the rate. Not a test (nothing timed is asserted); run it with:
//   node --expose-gc --import tsx bench/rate-limit-keyflood.ts [--keys N] [--max-keys M]
import { parseArgs } from 'node:util';
import { createRateLimitFilter } from '../plugins/rate-limit/index.ts';
import { fakeCtx, fakeServices, metricValue } from '../test/unit/rate-limit/fixtures.ts';

const { values } = parseArgs({ options: { keys: { type: 'string', default: '1000000' }, 'max-keys': { type: 'string', default: '100000' } } });
const total = Number(values.keys);
const maxKeys = Number(values['max-keys']);
if (!(total > 0) || !(maxKeys > 0)) throw new Error('--keys and --max-keys must be positive numbers');

const gc = (globalThis as { gc?: () => void }).gc;
const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
function memory(label: string) {
  gc?.();
  const m = process.memoryUsage();
  console.log(`${label.padEnd(28)} rss ${mib(m.rss).padStart(10)}  heapUsed ${mib(m.heapUsed).padStart(10)}`);
  return m;
}

const services = fakeServices();
// The decoded form of: filter "flood" { type "rate-limit"; max-rps 10; burst 5; max-keys M }
const filter = createRateLimitFilter('flood', { type: 'rate-limit', 'max-rps': 10, burst: 5, key: 'client-ip', 'max-keys': maxKeys }, services);
// One context reused with a new IP each time: the flood's cost is the limiter's, not the fake's.
const ctx = fakeCtx() as { clientIp: string } & ReturnType<typeof fakeCtx>;

const before = memory('before');
let rejected = 0;
const started = process.hrtime.bigint();
let peakRss = before.rss;
for (let i = 0; i < total; i++) {
  // Distinct IPv4 addresses in 10.0.0.0/8 (and beyond 16.7M, a suffix keeps them distinct).
  ctx.clientIp = `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}${i >= 1 << 24 ? `:${i >>> 24}` : ''}`;
  Object.assign(ctx, { responseHeaders: {} });
  const r = filter.onRequest!(ctx);
  if (r && !(r instanceof Promise)) rejected++;
  if ((i & 0xffff) === 0) peakRss = Math.max(peakRss, process.memoryUsage().rss);
}
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
const after = memory('after flood');
const keys = await metricValue(services.metrics, 'sentinel_rate_limit_keys', { scope: 'filter:flood' });
const forced = await metricValue(services.metrics, 'sentinel_rate_limit_key_evictions_total', { scope: 'filter:flood', reason: 'forced' });
console.log(`keys sent                    ${total.toLocaleString('en-US')} distinct`);
console.log(`keys held (gauge)            ${keys.toLocaleString('en-US')} (max-keys ${maxKeys.toLocaleString('en-US')})`);
console.log(`forced evictions             ${forced.toLocaleString('en-US')}`);
console.log(`rejected                     ${rejected} (every key is new, so none expected)`);
console.log(`rss growth                   ${mib(after.rss - before.rss)} (peak rss during flood ${mib(peakRss)})`);
console.log(`rate                         ${Math.round(total / seconds).toLocaleString('en-US')} new keys/s (${seconds.toFixed(2)} s)`);
await filter.close!();
memory('after close');
