// A callgrind dump's instructions split by who ran them: V8's garbage collector (marking,
// sweeping, scavenging, write barriers), its optimising compiler (TurboFan), once-a-second work
// whose share grows with a window's wall time, and the rest (the program itself: JIT code,
// builtins, runtime, native addons). bench/waf-engine.ts --instr reports
// the rest as the engine's own work: a GC cycle or a recompile that happens to fall into one
// window and not another moves the total by a third (docs/waf.md, sixth session). Pure.

export interface InstrSplit {
  total: number;
  gc: number;
  compiler: number;
  /** timer work paid per second, not per request (see PERIODIC) */
  periodic: number;
  /** total - gc - compiler - periodic */
  rest: number;
}

// The second line: the full (mark-compact) GC's helpers whose names the first misses: they put
// ~0.5 M instructions per GET into the windows a full GC fell into (waf-engine --instr).
const GC = new RegExp(
  [
    'Marking|MarkCompact|Sweep|Scaveng|WriteBarrier|RecordWrite|BodyDescriptor|Evacuat|v8::internal::Heap::|MinorMC|ConcurrentMarking|IncrementalMarking',
    'LiveObjectRange|RememberedSet|ActiveSystemPages|HeapObject::SizeFromMap|PretenuringHandler|RecordMigratedSlot|StringTableCleaner|IterateObjectCache|^__popcountdi2',
  ].join('|'),
);
const COMPILER = /v8::internal::compiler::|v8::internal::maglev::/;
// @fastify/under-pressure reads its event-loop-delay histogram's mean once a second (~730k
// instructions a read, in HdrHistogram's C). Valgrind stretches a window to about a minute, so
// that is 20-27k instructions per request under callgrind and ~70 at real speed
// (docs/architecture.md, session 11): per second, not per request.
// The same timer work also clears the histogram (`hdr_reset` -> libc `memset`, 9-15k instructions
// per request under callgrind): what a periodic function calls outside the categories above is
// periodic too (the call's inclusive cost moves from the rest), else the memset stays in the rest
// and grows with the window's wall time like the read does.
const PERIODIC = /^hdr_|^all_values_iter_next|HistogramImpl::GetMean/;

/**
 * Calls `visit(function name, cost)` for each self-cost line of a dump (first event; compressed
 * names, `fn=`/`cfn=` definitions; the line after `calls=` is an inclusive call cost, not self
 * cost). Names as callgrind wrote them: JIT code without symbols is `0x<address>`.
 */
function visitSelfCosts(text: string, visit: (fn: string, cost: number) => void, visitCall?: (caller: string, callee: string, inclusive: number) => void): void {
  const names = new Map<string, string>();
  let current = '';
  let callee = '';
  let afterCalls = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('fn=') || line.startsWith('cfn=')) {
      const m = /^c?fn=\((\d+)\)(?: (.*))?$/.exec(line);
      if (!m) continue;
      if (m[2] !== undefined) names.set(m[1]!, m[2]);
      if (line.startsWith('fn=')) current = names.get(m[1]!) ?? '';
      else callee = names.get(m[1]!) ?? '';
      continue;
    }
    if (line.startsWith('calls=')) {
      afterCalls = true;
      continue;
    }
    const c = line.charCodeAt(0);
    if ((c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2d || c === 0x2a) {
      if (afterCalls) {
        afterCalls = false;
        if (visitCall) {
          const parts = line.trim().split(/\s+/);
          if (parts.length >= 2) visitCall(current, callee, Number(parts[1]));
        }
        continue;
      }
      const parts = line.trim().split(/\s+/);
      if (parts.length < 2) continue;
      visit(current, Number(parts[1]));
    }
  }
}

/** Self cost per function category (see the top of this file). */
export function splitCallgrindDump(text: string): InstrSplit {
  const out = { total: 0, gc: 0, compiler: 0, periodic: 0, rest: 0 };
  const categories = new Map<string, 'gc' | 'compiler' | 'periodic' | 'rest'>();
  const category = (fn: string) => {
    let cat = categories.get(fn);
    if (cat === undefined) categories.set(fn, (cat = GC.test(fn) ? 'gc' : COMPILER.test(fn) ? 'compiler' : PERIODIC.test(fn) ? 'periodic' : 'rest'));
    return cat;
  };
  visitSelfCosts(
    text,
    (fn, cost) => {
      out[category(fn)] += cost;
      out.total += cost;
    },
    (caller, callee, inclusive) => {
      if (category(caller) !== 'periodic' || category(callee) !== 'rest') return;
      out.periodic += inclusive;
      out.rest -= inclusive;
    },
  );
  return out;
}

/** Self cost per function name (bench/callgrind-diff.ts compares two processes by it). */
export function selfCostByFunction(text: string): Map<string, number> {
  const out = new Map<string, number>();
  visitSelfCosts(text, (fn, cost) => out.set(fn, (out.get(fn) ?? 0) + cost));
  return out;
}
