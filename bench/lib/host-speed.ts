// How fast the host runs right now, on one core: a short fixed JavaScript loop (small objects,
// strings, a Map, JSON: the kind of work a gateway request does) in a fresh node child pinned to
// that core, timed by its own CPU clock after a warm-up pass. The host has slow phases lasting
// minutes in which everything costs ~1.75x more CPU (docs/tracing.md "Cost"); a gateway measured
// during one is not comparable with one measured outside, and this loop, run next to each
// measurement, tells them apart (bench/lib/block-ratios.ts flags them).
import { runPinned } from './processes.ts';

// Plain JavaScript for `node -e`: the same work every time, no I/O. The first pass warms the JIT
// up and is not timed; the timed passes report user+system CPU and wall time in ms.
const LOOP = `
function pass(round) {
  const m = new Map();
  let acc = 0;
  for (let i = 0; i < 4000; i++) {
    const k = 'key-' + i + '-' + round;
    m.set(k, { i, k, tags: [i & 7, i & 15] });
  }
  for (const [k, v] of m) acc += k.length + v.tags[0] + v.tags[1];
  acc += JSON.stringify([...m.values()].slice(0, 200)).length;
  return acc;
}
let sink = 0;
for (let r = 0; r < 20; r++) sink += pass(r);
const c0 = process.cpuUsage();
const t0 = performance.now();
for (let r = 0; r < PASSES; r++) sink += pass(r);
const c = process.cpuUsage(c0);
process.stdout.write(JSON.stringify({ cpuMs: (c.user + c.system) / 1000, wallMs: performance.now() - t0, sink }));
`;

export interface HostSpeed {
  /** CPU ms the fixed loop took (the calibration figure: same clock as the gateway's CPU per request) */
  cpuMs: number;
  wallMs: number;
}

/** Runs the calibration loop once on `cpu` (`passes` timed passes; 150 take ~80 ms of CPU on the 2-core VM). */
export async function measureHostSpeed(cpu: number | null, passes = 150): Promise<HostSpeed> {
  const out = await runPinned('host-speed loop', cpu, process.execPath, ['-e', LOOP.replace('PASSES', String(passes))], 60_000);
  const r = JSON.parse(out) as HostSpeed;
  if (!(r.cpuMs >= 0) || !(r.wallMs >= 0)) throw new Error(`host-speed loop: unexpected output ${out.slice(0, 200)}`);
  return { cpuMs: r.cpuMs, wallMs: r.wallMs };
}
