// What the filter chain's async wrapper costs per phase call (issue 18: "skip the chain's async
// call for a phase with exactly one hook?"), in process, interleaved rounds:
//   node --import tsx bench/chain-phase.ts [--rounds 7] [--calls 2000000]
// One route with one filter that has onRequest and onResponse, each answering through a promise
// the way an agent filter does (it waits for the agent's reply). Per round: the same number of
// calls through FilterChain.onRequest/onResponse and straight to the filter's hooks (what a
// single-hook fast path would do); the difference is the wrapper's cost per call.
import { parseArgs } from 'node:util';
import { FilterChain } from '../src/pipeline/chain.ts';
import type { LocalResponse, RequestContext, RequestFilter, UpstreamResponseInfo } from '../src/pipeline/types.ts';
import { median } from './lib/stats.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '7' }, calls: { type: 'string', default: '2000000' } } });
const rounds = Number(values.rounds);
const calls = Number(values.calls);

let seen = 0;
const filter: RequestFilter = {
  id: 'one',
  type: 'agent',
  onRequest: () => {
    seen++;
    return Promise.resolve(undefined);
  },
  onResponse: () => {
    seen++;
    return Promise.resolve(undefined);
  },
};
const chain = new FilterChain([filter]);
const ctx = {} as RequestContext; // the hooks above do not read it
const info: UpstreamResponseInfo = { status: 200, headers: {} };
const out = { refusedBy: undefined as RequestFilter | undefined };

async function viaChain(n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const refusal = await chain.onRequest(ctx, undefined, out);
    const local: LocalResponse | undefined = await chain.onResponse(ctx, info);
    if (refusal || local) throw new Error('unexpected answer');
  }
}

async function direct(n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const local = await filter.onRequest!(ctx);
    const res = await filter.onResponse!(ctx, info);
    if (local || res) throw new Error('unexpected answer');
  }
}

async function time(fn: (n: number) => Promise<void>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn(calls);
  return Number(process.hrtime.bigint() - t0) / calls; // ns per request (two phase calls)
}

await viaChain(calls / 10); // warm-up: both paths optimised
await direct(calls / 10);
const diffs: number[] = [];
const chained: number[] = [];
for (let r = 0; r < rounds; r++) {
  // alternate which variant goes first
  let c: number;
  let d: number;
  if (r % 2 === 0) {
    c = await time(viaChain);
    d = await time(direct);
  } else {
    d = await time(direct);
    c = await time(viaChain);
  }
  chained.push(c);
  diffs.push(c - d);
  console.log(`[round ${r + 1}] through the chain ${c.toFixed(1)} ns/request, straight to the hooks ${d.toFixed(1)} ns/request, wrapper ${(c - d).toFixed(1)} ns/request`);
}
if (seen === 0) throw new Error('no hook ran');
console.log(`\nchain wrapper, one filter with onRequest + onResponse (promise-returning), ${rounds} rounds x ${calls} requests: median ${median(diffs).toFixed(1)} ns per request (two phase calls), through the chain ${median(chained).toFixed(1)} ns`);
