// Self time by function of V8 CPU profiles (node --cpu-prof), idle left out: a ranking for
// comparing where a process spends its busy time (e.g. the sentinel-waf agent under the bench:waf
// load against the engine alone, issue #16). Valid under machine load as shares, not as times.
//
//   node --import tsx bench/waf-profile-top.ts [--top 40] [--group] FILE.cpuprofile...
//
// --group: also print shares by area (GC, engine, protocol/JSON, node internals, ...), from the
// function's script URL. Several files are summed (e.g. the profiles of several runs).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const { values, positionals } = parseArgs({ options: { top: { type: 'string', default: '40' }, group: { type: 'boolean', default: false } }, allowPositionals: true });

/** The area a frame belongs to, from its URL and name. */
export function area(fn: string, url: string): string {
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(program)') return 'V8/native (program)';
  if (url.includes('/waf/engine/') || url.includes('/waf/operators/') || url.includes('/waf/transformations/') || url.includes('/waf/bodies/') || url.includes('/waf/libinjection/') || url.includes('/waf/seen-before')) return 'engine';
  if (url.includes('/waf/regex/')) return 'engine regex';
  if (url.includes('/waf/agent/')) return 'WafService';
  if (url.includes('/agent-sdk/') || url.includes('/agent-protocol/')) return 'agent protocol';
  if (url.startsWith('node:') || url === '') return fn === 'parse' || fn === 'stringify' ? `JSON.${fn}` : 'node internals / builtins';
  if (url.includes('node_modules')) return 'node_modules';
  return 'other JS';
}

const self = new Map<string, number>();
const byArea = new Map<string, number>();
let busy = 0;
for (const file of positionals) {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  for (let i = 0; i < p.samples.length; i++) {
    const n = byId.get(p.samples[i]!)!;
    const { functionName, url, lineNumber } = n.callFrame;
    if (functionName === '(idle)') continue;
    const dt = p.timeDeltas[i] ?? 0;
    const key = `${functionName || '(anonymous)'} ${url.replace(/^.*\/(src|plugins|node_modules)\//, '$1/')}:${lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + dt);
    const a = area(functionName, url);
    byArea.set(a, (byArea.get(a) ?? 0) + dt);
    busy += dt;
  }
}
const pct = (x: number): string => `${((100 * x) / busy).toFixed(1).padStart(5)}%`;
console.log(`busy ${(busy / 1e6).toFixed(2)} s in ${positionals.length} profile(s)`);
if (values.group) {
  for (const [a, t] of [...byArea].sort((x, y) => y[1] - x[1])) console.log(`  ${pct(t)}  ${a}`);
  console.log('');
}
for (const [k, t] of [...self].sort((x, y) => y[1] - x[1]).slice(0, Number(values.top))) console.log(`  ${pct(t)}  ${k}`);
