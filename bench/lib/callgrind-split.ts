// A callgrind dump's instructions split by who ran them: V8's garbage collector (marking,
// sweeping, scavenging, write barriers), its optimising compiler (TurboFan), and the rest (the
// program itself: JIT code, builtins, runtime, native addons). bench/waf-engine.ts --instr reports
// the rest as the engine's own work: a GC cycle or a recompile that happens to fall into one
// window and not another moves the total by a third (docs/waf.md, sixth session). Pure.

export interface InstrSplit {
  total: number;
  gc: number;
  compiler: number;
  /** total - gc - compiler */
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

/** Self cost (first event) per function category, from the dump's cost lines (compressed names,
 * `fn=`/`cfn=` definitions; the line after `calls=` is an inclusive call cost, not self cost). */
export function splitCallgrindDump(text: string): InstrSplit {
  const names = new Map<string, string>();
  let cat: 'gc' | 'compiler' | 'rest' = 'rest';
  let afterCalls = false;
  const out = { total: 0, gc: 0, compiler: 0, rest: 0 };
  for (const line of text.split('\n')) {
    if (line.startsWith('fn=') || line.startsWith('cfn=')) {
      const m = /^c?fn=\((\d+)\)(?: (.*))?$/.exec(line);
      if (!m) continue;
      if (m[2] !== undefined) names.set(m[1]!, m[2]);
      if (line.startsWith('fn=')) {
        const name = names.get(m[1]!) ?? '';
        cat = GC.test(name) ? 'gc' : COMPILER.test(name) ? 'compiler' : 'rest';
      }
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
        continue;
      }
      const parts = line.trim().split(/\s+/);
      if (parts.length < 2) continue;
      const cost = Number(parts[1]);
      out[cat] += cost;
      out.total += cost;
    }
  }
  return out;
}

/**
 * Self cost (first event) per function name, from the same cost lines as splitCallgrindDump
 * (bench/callgrind-diff.ts compares two processes by it). Names as callgrind wrote them: JIT code
 * without symbols is `0x<address>`, which a perf map can name.
 */
export function selfCostByFunction(text: string): Map<string, number> {
  const names = new Map<string, string>();
  const out = new Map<string, number>();
  let current = '';
  let afterCalls = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('fn=') || line.startsWith('cfn=')) {
      const m = /^c?fn=\((\d+)\)(?: (.*))?$/.exec(line);
      if (!m) continue;
      if (m[2] !== undefined) names.set(m[1]!, m[2]);
      if (line.startsWith('fn=')) current = names.get(m[1]!) ?? '';
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
        continue;
      }
      const parts = line.trim().split(/\s+/);
      if (parts.length < 2) continue;
      out.set(current, (out.get(current) ?? 0) + Number(parts[1]));
    }
  }
  return out;
}
