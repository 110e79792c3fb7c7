import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseH2loadOutput } from '../../../bench/lib/h2load.ts';

// Shaped exactly as h2load (nghttp2-client, Debian) prints with --h1 -t 1.
const OK = `starting benchmark...
spawning thread #0: 20 total client(s). 2000 total requests
Application protocol: http/1.1
progress: 10% done
progress: 100% done

finished in 73.66ms, 27153.62 req/s, 3.94MB/s
requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 2000 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 296.88KB (304000) total, 210.94KB (216000) headers (space savings 0.00%), 9.77KB (10000) data
                     min         max         mean         sd        +/- sd
time for request:       32us     12.36ms       624us      1.20ms    98.00%
req/s           :    1542.61     1635.47     1580.17       24.59    70.00%
`;

const REFUSED = `starting benchmark...
spawning thread #0: 20 total client(s). 200 total requests

finished in 4.50ms, 0.00 req/s, 0B/s
requests: 200 total, 0 started, 0 done, 0 succeeded, 200 failed, 200 errored, 0 timeout
status codes: 0 2xx, 0 3xx, 0 4xx, 0 5xx
`;

test('parseH2loadOutput', () => {
  const cases: Array<[string, string, Partial<ReturnType<typeof parseH2loadOutput>>]> = [
    ['a full run', OK, { durationS: 0.07366, requestsPerSec: 27153.62, total: 2000, succeeded: 2000, failed: 0, errored: 0, timeout: 0, status2xx: 2000 }],
    ['connection refused', REFUSED, { durationS: 0.0045, requestsPerSec: 0, total: 200, succeeded: 0, failed: 200, errored: 200, status2xx: 0 }],
    ['seconds and non-2xx', OK.replace('73.66ms', '3.52s').replace('2000 2xx, 0 3xx, 0 4xx, 0 5xx', '1990 2xx, 0 3xx, 0 4xx, 10 5xx'), { durationS: 3.52, status2xx: 1990, succeeded: 2000 }],
  ];
  for (const [name, text, want] of cases) {
    const got = parseH2loadOutput(text);
    for (const [k, v] of Object.entries(want)) assert.ok(Math.abs((got as unknown as Record<string, number>)[k]! - v) < 1e-9, `${name}: ${k} ${(got as unknown as Record<string, number>)[k]} != ${v}`);
  }
  assert.throws(() => parseH2loadOutput('h2load: command failed'), /unexpected output/);
});
