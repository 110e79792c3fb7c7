// What survives young-generation GC on the agent hop (issue #16 item 3): each gateway runs with
// --trace-gc-nvp (and --predictable-gc-schedule, so heap growth does not depend on timing), is
// warmed up, then gets segments of exactly --requests keep-alive requests per path, alternating
// sides and paths; per segment the scavenges, mark-compacts and bytes promoted to old space are
// summed from the trace lines the segment produced, and divided by the requests. Counts, not
// times: what else runs on the machine moves them little (the allocation per request decides when
// a scavenge comes; what a scavenge finds alive depends on the requests in flight).
//   node --import tsx bench/agent-hop-gc.ts [--baseline DIR] [--segments 4] [--requests 4000]
//                                           [--warmup 6000] [--concurrency 8] [--paths pass,agent]
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startHopOrigin, startHopSide, type HopSide } from './lib/agent-hop-side.ts';
import { sendFixed } from './lib/instr.ts';
import { benchScratchDir } from './lib/processes.ts';
import { median } from './lib/stats.ts';
import { collectLines, sumGcLines, type GcSums } from './lib/gc-trace.ts';

const { values } = parseArgs({
  options: {
    baseline: { type: 'string' },
    segments: { type: 'string', default: '4' },
    requests: { type: 'string', default: '4000' },
    warmup: { type: 'string', default: '6000' },
    concurrency: { type: 'string', default: '8' },
    paths: { type: 'string', default: 'pass,agent' },
    'node-flags': { type: 'string', default: '--predictable-gc-schedule' },
  },
});
const REPO = resolve(import.meta.dirname, '..');
const tmp = benchScratchDir('agent-hop-gc-');
const n = Number(values.requests);
const concurrency = Number(values.concurrency);
const paths = values.paths.split(',');

/** The trace lines of one gateway, as they arrive (stdout, where --trace-gc-nvp writes). */
interface Traced extends HopSide {
  lines: string[];
}

async function start(name: string, root: string, originPort: number): Promise<Traced> {
  const side = await startHopSide(name, root, { dir: join(tmp, name), originPort, gatewayCpu: null, agentCpu: null, nodeFlags: ['--trace-gc-nvp', ...values['node-flags'].split(/\s+/).filter(Boolean)] });
  return { ...side, lines: collectLines(side.gateway.child.stdout!) };
}

const { port: originPort } = await startHopOrigin(tmp);
const sides: Traced[] = [await start('current', REPO, originPort)];
if (values.baseline) sides.push(await start('baseline', resolve(values.baseline), originPort));
for (const s of sides) for (const p of paths) await sendFixed(s.port, `/${p}`, Number(values.warmup), concurrency);

const results = new Map<string, GcSums[]>();
const segments = Number(values.segments);
console.log(`gc: ${segments} segments of ${n} requests per side and path after ${values.warmup} warm-up, ${concurrency} keep-alive connections, ${values['node-flags']}`);
for (let i = 0; i < segments; i++) {
  const order = i % 2 === 0 ? sides : [...sides].reverse();
  for (const s of order) {
    for (const p of i % 2 === 0 ? paths : [...paths].reverse()) {
      // let a pending trace line of the previous segment arrive before the cut
      await new Promise((r) => setTimeout(r, 100));
      const from = s.lines.length;
      const bad = await sendFixed(s.port, `/${p}`, n, concurrency);
      await new Promise((r) => setTimeout(r, 100));
      const sums = sumGcLines(s.lines.slice(from));
      const key = `${s.name} /${p}`;
      results.set(key, [...(results.get(key) ?? []), sums]);
      console.log(`  ${key.padEnd(16)} scavenges ${sums.scavenges}, mark-compacts ${sums.markCompacts}, promoted ${((sums.promotedBytes / n) | 0).toString().padStart(5)} B/request${bad ? `, ${bad} non-200` : ''}`);
    }
  }
}
console.log('\nmedians per request over segments:');
for (const [key, list] of results) {
  const promoted = median(list.map((x) => x.promotedBytes / n));
  console.log(`  ${key.padEnd(16)} promoted ${promoted.toFixed(0)} B/request (segments ${list.map((x) => (x.promotedBytes / n).toFixed(0)).join(', ')}), scavenges ${median(list.map((x) => x.scavenges))}, mark-compacts ${list.map((x) => x.markCompacts).join(',')}`);
}
for (const s of sides) await s.gateway.stop();
for (const s of sides) await s.agent.stop();
process.exit(0);
