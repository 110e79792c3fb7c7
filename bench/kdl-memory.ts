// KDL parser footprint: our parser (src/config/kdl/) vs kdljs 0.3.0 (issue #9, memory).
// `node --import tsx bench/kdl-memory.ts` runs one fresh child process per variant, each of which
// imports its parser, parses config/default.kdl and the largest test config, forces GC and reports
// RSS / heapUsed (absolute and over a child that imports no parser); then it also parses and keeps a
// generated 1,000-route config and reports memory again; then it times parsing that config (median of
// 30 runs after 10 warm-up runs). Takes a few seconds.
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const MiB = 1024 * 1024;

type Variant = 'none' | 'ours' | 'kdljs';

interface ChildReport {
  variant: Variant;
  rss: number;
  heapUsed: number;
  /** After the 1,000-route document was parsed too (and kept). */
  rssBig: number;
  heapUsedBig: number;
  parseMs?: number;
}

/** A config with `n` routes, each with a few matches and policies, like a large real deployment. */
export function routesConfig(n: number): string {
  const out = ['system { worker-threads 0 }', 'listeners {', '  listener "http" { address "127.0.0.1:8080"; protocol "http" }', '}', 'upstreams {'];
  out.push('  upstream "backend" {', '    target "127.0.0.1:9000" weight=1', '    load-balancing "round-robin"', '  }', '}', 'routes {');
  for (let i = 0; i < n; i++) {
    out.push(
      `  route "route-${i}" {`,
      `    priority ${i % 3 === 0 ? '"high"' : 50 + (i % 50)}`,
      '    matches {',
      `      path-prefix "/api/v${i % 7}/service-${i}/"`,
      `      host "svc-${i}.example.com"`,
      `      method "GET" "POST"`,
      '    }',
      '    upstream "backend"',
      '    policies {',
      `      timeout-secs ${10 + (i % 20)}`,
      '      max-body-size "1MB"',
      `      request-headers { set { X-Route "r${i}" } }`,
      '    }',
      '  }',
    );
  }
  out.push('}');
  return out.join('\n') + '\n';
}

function largestTestConfig(): string {
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.kdl')) files.push(p);
    }
  };
  walk(join(root, 'test'));
  return files.sort((a, b) => statSync(b).size - statSync(a).size)[0]!;
}

async function child(variant: Variant): Promise<void> {
  type Parse = (text: string) => unknown[];
  let parse: Parse = () => [];
  if (variant === 'ours') {
    const m = await import('../src/config/kdl/parser.ts');
    parse = m.parseDocument;
  } else if (variant === 'kdljs') {
    const m = await import('kdljs');
    parse = (t) => {
      const r = m.parse(t);
      if (r.errors.length > 0 || !r.output) throw new Error(`kdljs: ${r.errors[0]?.message}`);
      return r.output;
    };
  }
  const texts = [readFileSync(join(root, 'config/default.kdl'), 'utf8'), readFileSync(largestTestConfig(), 'utf8')];
  const big = routesConfig(1000);
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run the child with --expose-gc');
  const measure = (): NodeJS.MemoryUsage => {
    gc();
    gc();
    return process.memoryUsage();
  };
  // keep the parsed documents alive, as the gateway keeps its config
  const kept = texts.map((t) => parse(t));
  const mem = measure();
  kept.push(parse(big));
  const memBig = measure();
  const report: ChildReport = { variant, rss: mem.rss, heapUsed: mem.heapUsed, rssBig: memBig.rss, heapUsedBig: memBig.heapUsed };
  if (variant !== 'none') {
    for (let i = 0; i < 10; i++) parse(big);
    const times: number[] = [];
    for (let i = 0; i < 30; i++) {
      const t0 = process.hrtime.bigint();
      parse(big);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    times.sort((a, b) => a - b);
    report.parseMs = times[times.length >> 1]!;
  }
  process.stdout.write(JSON.stringify(report) + '\n');
}

function runChild(variant: Variant): ChildReport {
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url), '--child', variant], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`child ${variant} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as ChildReport;
}

const i = process.argv.indexOf('--child');
if (i >= 0) {
  await child(process.argv[i + 1] as Variant);
} else {
  const big = routesConfig(1000);
  console.log(`inputs: config/default.kdl, ${relative(root, largestTestConfig())}, generated 1,000-route config (${(big.length / 1024).toFixed(0)} KiB, ${big.split('\n').length} lines)`);
  const base = runChild('none');
  const rows = [runChild('ours'), runChild('kdljs')];
  const f = (b: number): string => (b / MiB).toFixed(1);
  const d = (b: number): string => (b >= 0 ? '+' : '') + (b / MiB).toFixed(1);
  const line = (cells: string[]): string => cells.map((c, j) => (j === 0 ? c.padEnd(8) : c.padStart(j === 5 ? 14 : 19))).join(' ');
  console.log(line(['', 'RSS MiB', 'heapUsed MiB', '+1k routes RSS', '+1k routes heap', 'parse 1k (ms)']));
  console.log(line(['none', f(base.rss), f(base.heapUsed), f(base.rssBig), f(base.heapUsedBig), '-']));
  for (const r of rows) {
    console.log(
      line([
        r.variant,
        `${f(r.rss)} (${d(r.rss - base.rss)})`,
        `${f(r.heapUsed)} (${d(r.heapUsed - base.heapUsed)})`,
        `${f(r.rssBig)} (${d(r.rssBig - base.rssBig)})`,
        `${f(r.heapUsedBig)} (${d(r.heapUsedBig - base.heapUsedBig)})`,
        r.parseMs!.toFixed(1),
      ]),
    );
  }
  console.log('(in parentheses: over the "none" child, which runs the same script under tsx without a parser)');
}
