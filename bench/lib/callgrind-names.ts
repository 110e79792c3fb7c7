// Naming a callgrind dump's JIT code from V8's perf map (node --perf-basic-prof), and summing its
// cost per function: self cost (the first event, Ir) and inclusive cost (self plus the calls the
// function makes to other functions). Callgrind names code without symbols by address
// (`0x000000001f3a2b40`), one "function" per entry point it saw; the perf map gives each JIT code
// object's range and name (`<start> <size> <name>`, hex, in the order V8 created them: a later
// entry over the same addresses is newer code). Pure: text in, numbers out.

export interface PerfMapEntry {
  start: number;
  end: number;
  name: string;
}

/** Parses a perf map; later entries win where ranges overlap (see nameAt). */
export function parsePerfMap(text: string): PerfMapEntry[] {
  const out: PerfMapEntry[] = [];
  for (const line of text.split('\n')) {
    const m = /^([0-9a-fA-F]+) ([0-9a-fA-F]+) (.*)$/.exec(line);
    if (!m) continue;
    const start = Number.parseInt(m[1]!, 16);
    out.push({ start, end: start + Number.parseInt(m[2]!, 16), name: m[3]! });
  }
  return out;
}

/** Looks addresses up in a perf map: the newest entry whose range holds the address. */
export class PerfMapIndex {
  private readonly sorted: PerfMapEntry[];
  private readonly order: Map<PerfMapEntry, number>;

  constructor(entries: PerfMapEntry[]) {
    this.order = new Map(entries.map((e, i) => [e, i]));
    this.sorted = [...entries].sort((a, b) => a.start - b.start);
  }

  nameAt(addr: number): string | undefined {
    // Every entry starting at or before addr is a candidate; ranges are small, so scan back a little.
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.sorted[mid]!.start <= addr) lo = mid + 1;
      else hi = mid;
    }
    let best: PerfMapEntry | undefined;
    for (let i = lo - 1, seen = 0; i >= 0 && seen < 64; i--, seen++) {
      const e = this.sorted[i]!;
      if (addr < e.end && (best === undefined || this.order.get(e)! > this.order.get(best)!)) best = e;
    }
    return best?.name;
  }
}

export interface FunctionCost {
  self: number;
  inclusive: number;
}

/** Self and inclusive cost per function name (addresses renamed by `rename`); calls between two
 * parts of one renamed function are not added to its inclusive cost (they are in its self cost).
 * Recursion through another function counts twice in the inclusive figure (a ranking, not a sum). */
export function costByFunction(
  text: string,
  rename: (name: string) => string = (n) => n,
  /** When given: the inclusive cost of the calls to this function (a renamed name), by caller. */
  callersOf?: { callee: string; byCaller: Map<string, number> },
): Map<string, FunctionCost> {
  const names = new Map<string, string>();
  const out = new Map<string, FunctionCost>();
  const get = (n: string): FunctionCost => {
    let c = out.get(n);
    if (!c) {
      c = { self: 0, inclusive: 0 };
      out.set(n, c);
    }
    return c;
  };
  let current: FunctionCost | undefined;
  let currentName = '';
  let callee = '';
  let afterCalls = false;
  const nameOf = (line: string): string => {
    const m = /^c?fn=\((\d+)\)(?: (.*))?$/.exec(line);
    if (!m) return line.slice(line.indexOf('=') + 1);
    if (m[2] !== undefined) names.set(m[1]!, rename(m[2]));
    return names.get(m[1]!) ?? `(${m[1]})`;
  };
  for (const line of text.split('\n')) {
    if (line.startsWith('fn=')) {
      currentName = nameOf(line);
      current = get(currentName);
      continue;
    }
    if (line.startsWith('cfn=')) {
      callee = nameOf(line);
      continue;
    }
    if (line.startsWith('calls=')) {
      afterCalls = true;
      continue;
    }
    const c = line.charCodeAt(0);
    if (current && ((c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2d || c === 0x2a)) {
      const parts = line.trim().split(/\s+/);
      if (parts.length < 2) continue;
      const cost = Number(parts[1]);
      if (afterCalls) {
        afterCalls = false;
        if (callee !== currentName) current.inclusive += cost;
        if (callersOf !== undefined && callee === callersOf.callee && callee !== currentName) {
          callersOf.byCaller.set(currentName, (callersOf.byCaller.get(currentName) ?? 0) + cost);
        }
        continue;
      }
      current.self += cost;
      current.inclusive += cost;
    }
  }
  return out;
}

/** A renamer for costByFunction: `0x...` names looked up in the perf map, V8's tier markers
 * (`LazyCompile:*`, `Function:~`, `JS:^`...) dropped so one JS function's tiers sum together. */
export function jitRenamer(map: PerfMapIndex): (name: string) => string {
  return (name) => {
    const m = /^0x([0-9a-fA-F]+)$/.exec(name);
    if (!m) return name;
    const found = map.nameAt(Number.parseInt(m[1]!, 16));
    if (found === undefined) return '(JIT, unnamed)';
    return found.replace(/^(LazyCompile|Function|JS|Script|Builtin|BytecodeHandler|Handler|Stub|RegExp|Eval):[*~^+]?/, (_, kind: string) => (kind === 'Builtin' || kind === 'BytecodeHandler' || kind === 'RegExp' ? `${kind}:` : ''));
  };
}
