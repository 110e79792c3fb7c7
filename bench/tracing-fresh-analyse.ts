// `node --import tsx bench/tracing-fresh-analyse.ts --json FILE [--json FILE ...] [--log FILE] [--positions]`
//
// The report of `bench/tracing.ts --mode fresh --json FILE`, recomputed from the recorded data
// (no load, no gateways: seconds): the same text the bench prints at the end of a run
// (bench/lib/fresh-report.ts). Several --json files are pooled into one set of blocks when they
// recorded the same commits from clean trees and the same options (bench/lib/fresh-data.ts), so
// the quiet windows of several sessions can add up; anything else is refused.
// --log FILE: the printed output of the same run, for files written before the loops before and
// after each measurement were recorded apart (the log's "host loop B/A ms CPU"); one file only.
// --positions: also whether a gateway's place in an interleaved block moved its CPU per request
// (back-to-back segments against waiting ones, start order, CPU outside its own segments:
// bench/lib/fresh-positions.ts), the method's order bias read from the run's own segments.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { calibrationFromLog, poolFreshData, readFreshData } from './lib/fresh-data.ts';
import { freshReport } from './lib/fresh-report.ts';
import { positionEffects, positionReport } from './lib/fresh-positions.ts';

const { values } = parseArgs({ options: { json: { type: 'string', multiple: true }, log: { type: 'string' }, positions: { type: 'boolean', default: false } } });
const files = values.json ?? [];
if (!files.length) {
  console.error('usage: node --import tsx bench/tracing-fresh-analyse.ts --json FILE [--json FILE ...] [--log FILE]');
  process.exit(2);
}
if (values.log && files.length > 1) throw new Error('--log goes with one --json file (the run it printed)');
const data = poolFreshData(files.map((name) => ({ name, data: readFreshData(name) })));
if (values.log) data.runs = calibrationFromLog(data.runs, readFileSync(values.log, 'utf8'));
console.log(`${files.length} file(s): ${files.join(', ')}; started ${data.startedAt ?? 'not recorded'}; commits ${[...new Set(data.variants.map((v) => `${v.tree} ${v.commit ?? 'not recorded'}${v.dirty ? ' (modified tree)' : ''}`))].join(', ')}`);
console.log(freshReport(data));
if (values.positions) console.log(`\n${positionReport(positionEffects(data))}`);
