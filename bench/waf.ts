// WAF evaluation time per request (all five phases, engine only, no sockets): median and p99
// for a benign and an attack request at paranoia levels 1 and 4, CRS in blocking mode.
// Run: node --import tsx bench/waf.ts [iterations]   (CRS_DIR as for the conformance suite)
import { performance } from 'node:perf_hooks';

import { loadWaf, type NewTransactionInput, type Waf } from '../src/waf/index.ts';
import { crsDir } from '../test/unit/waf-regex/crs-rules.ts';

const iterations = Number(process.argv[2] ?? 2000);
const warmup = Math.min(300, iterations);

interface Sample {
  name: string;
  req: NewTransactionInput;
  body?: string;
}

const headers: [string, string][] = [
  ['Host', 'shop.example'],
  ['User-Agent', 'Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0'],
  ['Accept', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'],
  ['Accept-Language', 'en-US,en;q=0.5'],
  ['Accept-Encoding', 'gzip, deflate, br'],
  ['Cookie', 'session=8f14e45fceea167a5a36dedd4bea2543; theme=dark'],
];
const base = { clientIp: '192.0.2.10', clientPort: 50123, serverPort: 443, protocol: 'HTTP/1.1' };

const samples: Sample[] = [
  {
    name: 'benign GET',
    req: { ...base, method: 'GET', uri: '/products/search?q=blue+running+shoes&size=42&page=2', headers },
  },
  {
    name: 'benign POST form',
    req: {
      ...base,
      method: 'POST',
      uri: '/account/profile',
      headers: [...headers, ['Content-Type', 'application/x-www-form-urlencoded'], ['Content-Length', '63']],
    },
    body: 'name=Alice+Martin&email=alice%40example.org&city=Lyon&zip=69001',
  },
  {
    name: 'attack GET (SQLi)',
    req: { ...base, method: 'GET', uri: "/products/search?q=1'+UNION+SELECT+username,password+FROM+users--&size=42", headers },
  },
  {
    name: 'attack POST (XSS)',
    req: {
      ...base,
      method: 'POST',
      uri: '/comments',
      headers: [...headers, ['Content-Type', 'application/x-www-form-urlencoded'], ['Content-Length', '60']],
    },
    body: 'comment=%3Cscript%3Edocument.location%3D%27//evil%27%3C/script%3E',
  },
];

function once(waf: Waf, s: Sample): void {
  const tx = waf.newTransaction(s.req);
  let it = tx.processRequestHeaders();
  if (!it && s.body) it = tx.appendRequestBody(s.body);
  if (!it) it = tx.processRequestBody();
  if (!it) it = tx.processResponseHeaders(200, [['Content-Type', 'text/html; charset=utf-8']]);
  if (!it) {
    tx.appendResponseBody('<html><body>ok</body></html>');
    tx.processResponseBody();
  }
  tx.processLogging();
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

console.log(`sentinel-waf engine bench: ${iterations} iterations per case (after ${warmup} warm-up), node ${process.version}`);
for (const pl of [1, 4]) {
  const t0 = performance.now();
  const waf = loadWaf({ mode: 'blocking', paranoiaLevel: pl, crsDir });
  console.log(`\nPL${pl}: ${waf.ruleCount} rules loaded in ${(performance.now() - t0).toFixed(0)} ms`);
  for (const s of samples) {
    for (let i = 0; i < warmup; i++) once(waf, s);
    const times: number[] = [];
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < iterations; i++) {
      const start = performance.now();
      once(waf, s);
      times.push(performance.now() - start);
    }
    // CPU time per request: less sensitive than wall time to other processes on the machine.
    const cpu = process.cpuUsage(cpu0);
    const cpuMs = (cpu.user + cpu.system) / 1000 / iterations;
    times.sort((a, b) => a - b);
    const tx = waf.newTransaction(s.req);
    tx.processRequestHeaders();
    if (s.body) tx.appendRequestBody(s.body);
    const it = tx.processRequestBody();
    const verdict = it ? `blocked by ${it.ruleId}` : 'allowed';
    console.log(
      `  ${s.name.padEnd(20)} median ${percentile(times, 50).toFixed(3)} ms  p99 ${percentile(times, 99).toFixed(3)} ms  cpu/req ${cpuMs.toFixed(3)} ms  (${verdict})`,
    );
  }
}
