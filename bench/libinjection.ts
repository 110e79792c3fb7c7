// Throughput of detectSqli / detectXss on short benign values and on attack strings.
// Run: node --import tsx bench/libinjection.ts   (ROUNDS=7 DURATION_MS=400 to tune)
import { detectSqli, detectXss } from '../src/waf/libinjection/index.ts';

const BENIGN = [
  'hello', 'john.doe@example.com', '12345', 'New York', 'search term with spaces', '2024-01-01',
  "O'Reilly", 'en-US', 'true', 'page=2', 'red,green,blue', 'Müller'.replace('ü', '\xfc'),
  'https://example.com/a/b?c=d', 'a1b2c3d4', '3.14159', 'Product #42 (large)',
];

const SQLI_ATTACKS = [
  "1' OR '1'='1", '1 UNION SELECT username, password FROM users--', "admin'--",
  "1; DROP TABLE users", "' AND 1=CONVERT(int,@@version)--", '1 AND SLEEP(5)',
  "-1' UNION ALL SELECT NULL,NULL,table_name FROM information_schema.tables#",
  "1' AND extractvalue(1,concat(0x7e,(SELECT user())))--", "') OR ('a'='a", '1/**/OR/**/1=1',
];

const XSS_ATTACKS = [
  '<script>alert(1)</script>', '<img src=x onerror=alert(1)>', '"><svg onload=alert(1)>',
  "<a href='javascript:alert(1)'>x</a>", '<iframe src="data:text/html,<script>alert(1)</script>">',
  '<body onload=alert(1)>', "' onmouseover='alert(1)", '<div style="background:url(javascript:alert(1))">',
];

const ROUNDS = Number(process.env.ROUNDS ?? 7);
const DURATION_MS = Number(process.env.DURATION_MS ?? 400);

interface Rate {
  /** inputs per wall-clock second */
  wall: number;
  /** inputs per second of this process's CPU time (steadier on a shared machine) */
  cpu: number;
}

/** Rates for one round of about DURATION_MS. */
function oneRound(inputs: readonly string[], fn: (s: string) => unknown): Rate {
  let done = 0;
  let sink = 0;
  const cpuStart = process.cpuUsage();
  const start = process.hrtime.bigint();
  const limit = start + BigInt(DURATION_MS) * 1_000_000n;
  let now = start;
  while (now < limit) {
    for (const s of inputs) {
      if (fn(s)) sink++;
    }
    done += inputs.length;
    now = process.hrtime.bigint();
  }
  const cpu = process.cpuUsage(cpuStart);
  if (sink < 0) console.log(sink); // keeps the calls observable
  return { wall: done / (Number(now - start) / 1e9), cpu: done / ((cpu.user + cpu.system) / 1e6) };
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

function bench(name: string, inputs: readonly string[], fn: (s: string) => unknown): void {
  oneRound(inputs, fn); // warm-up
  const rates: Rate[] = [];
  for (let i = 0; i < ROUNDS; i++) rates.push(oneRound(inputs, fn));
  const fmt = (n: number): string => Math.round(n).toLocaleString('en-US').padStart(11);
  const wall = median(rates.map((r) => r.wall));
  const cpu = median(rates.map((r) => r.cpu));
  console.log(`${name.padEnd(22)} ${fmt(wall)} inputs/s wall, ${fmt(cpu)} inputs/CPU-s (medians of ${ROUNDS})`);
}

const sqli = (s: string): boolean => detectSqli(s).detected;
console.log(`libinjection (TypeScript) on node ${process.version}`);
bench('detectSqli benign', BENIGN, sqli);
bench('detectSqli attacks', SQLI_ATTACKS, sqli);
bench('detectXss benign', BENIGN, detectXss);
bench('detectXss attacks', XSS_ATTACKS, detectXss);
