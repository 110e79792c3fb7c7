// Where a callgrind dump's instructions went, by function, JIT code named from V8's perf map: for
// the dumps `bench/waf-engine.ts --instr --keep DIR` leaves (DIR/<tree>.<kind>.<n>.callgrind and
// DIR/<tree>.perf.map). Self and inclusive instructions per request, ranked.
//
//   node --import tsx bench/callgrind-top.ts --map DIR/this.perf.map --per 200 [--top 50]
//        [--sort self|inclusive] [--grep REGEX] [--callers NAME] DIR/this.get.1.callgrind [more dumps of the same kind]
//
// --callers NAME: instead, who calls the function NAME (as printed) and what those calls cost.
//
// --per: requests per window (waf-engine's --iterations for GETs, half of it for POSTs); several
// dumps are averaged. JS functions' tiers (interpreted, baseline, optimised) are summed under one name.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { costByFunction, jitRenamer, parsePerfMap, PerfMapIndex, type FunctionCost } from './lib/callgrind-names.ts';

const { values, positionals } = parseArgs({
  options: {
    map: { type: 'string', default: '' },
    per: { type: 'string', default: '1' },
    top: { type: 'string', default: '50' },
    sort: { type: 'string', default: 'self' },
    grep: { type: 'string', default: '' },
    callers: { type: 'string', default: '' },
  },
  allowPositionals: true,
});

const rename = values.map ? jitRenamer(new PerfMapIndex(parsePerfMap(readFileSync(values.map, 'utf8')))) : undefined;
const sum = new Map<string, FunctionCost>();
const callersOf = values.callers ? { callee: values.callers, byCaller: new Map<string, number>() } : undefined;
let total = 0;
for (const file of positionals) {
  for (const [name, c] of costByFunction(readFileSync(file, 'utf8'), rename, callersOf)) {
    const s = sum.get(name) ?? { self: 0, inclusive: 0 };
    s.self += c.self;
    s.inclusive += c.inclusive;
    sum.set(name, s);
    total += c.self;
  }
}
const div = Number(values.per) * positionals.length;
if (callersOf) {
  console.log(`callers of ${callersOf.callee}: inclusive instructions of their calls per request`);
  for (const [caller, cost] of [...callersOf.byCaller].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) {
    console.log(`${(cost / div / 1000).toFixed(1).padStart(8)} k  ${caller.slice(0, 150)}`);
  }
  process.exit(0);
}
const key = values.sort === 'inclusive' ? 'inclusive' : 'self';
const grep = values.grep ? new RegExp(values.grep) : undefined;
const rows = [...sum].filter(([n]) => !grep || grep.test(n)).sort((a, b) => b[1][key] - a[1][key]);
const k = (x: number): string => `${(x / div / 1000).toFixed(1).padStart(8)} k`;
console.log(`${(total / div / 1e6).toFixed(3)} M instructions per request (${positionals.length} dump(s), ${values.per} requests each); self, inclusive, self share`);
for (const [name, c] of rows.slice(0, Number(values.top))) {
  console.log(`${k(c.self)} ${k(c.inclusive)} ${((100 * c.self) / total).toFixed(1).padStart(5)}%  ${name.slice(0, 150)}`);
}
