// Sums of V8's --trace-gc-nvp lines (bench/agent-hop-gc.ts): one line per GC, `gc=s` a
// scavenge, `gc=ms` (or `mc`) a mark-compact, `promoted=` the bytes it moved to old space.

export interface GcSums {
  scavenges: number;
  markCompacts: number;
  promotedBytes: number;
}

/** Sums --trace-gc-nvp lines; lines without a `gc=` field (anything else on stdout) are skipped. */
export function sumGcLines(lines: readonly string[]): GcSums {
  const sums: GcSums = { scavenges: 0, markCompacts: 0, promotedBytes: 0 };
  for (const line of lines) {
    const kind = /(?:^|\s)gc=(\w+)/.exec(line)?.[1];
    if (kind === undefined) continue;
    if (kind === 's') sums.scavenges++;
    else if (kind === 'ms' || kind === 'mc') sums.markCompacts++;
    const promoted = /(?:^|\s)promoted=(\d+)/.exec(line);
    if (promoted) sums.promotedBytes += Number(promoted[1]);
  }
  return sums;
}

/** Collects a child's output lines (V8's --trace-gc-nvp and --trace-opt print to stdout) as they arrive. */
export function collectLines(stream: NodeJS.ReadableStream): string[] {
  const lines: string[] = [];
  let rest = '';
  stream.on('data', (c: Buffer) => {
    const parts = (rest + c.toString('utf8')).split('\n');
    rest = parts.pop()!;
    lines.push(...parts);
  });
  return lines;
}

export interface JitSums {
  /** optimising compiles that completed (`[completed compiling ...`, one per compile) */
  compiles: number;
  /** their PREPARE + EXECUTE + FINALIZE milliseconds as V8 prints them (wall time of the phases) */
  compileMs: number;
  /** deoptimisations (`[bailout (kind: ...`) */
  deopts: number;
  /** each compile's function (` OSR` appended for on-stack replacement) and milliseconds, in the order seen */
  compiled: [string, number][];
  /** deoptimised functions with the reason, e.g. `onConnect (wrong map)`, in the order seen */
  deopted: string[];
}

/**
 * Sums V8's --trace-opt / --trace-deopt lines (bench/tracing-gc.ts, bench/tracing.ts --mode fresh):
 * the optimising compiles a stretch of a gateway's life completed and what it deoptimised. These
 * are what an instruction count of the same requests leaves out (its figure is taken without
 * TurboFan, and a deopt's slow calls happen where the process's timing puts them).
 */
export function sumJitLines(lines: readonly string[]): JitSums {
  const sums: JitSums = { compiles: 0, compileMs: 0, deopts: 0, compiled: [], deopted: [] };
  for (const line of lines) {
    if (line.startsWith('[completed compiling')) {
      sums.compiles++;
      const m = /took ([\d.]+), ([\d.]+), ([\d.]+) ms/.exec(line);
      const ms = m ? Number(m[1]) + Number(m[2]) + Number(m[3]) : 0;
      sums.compileMs += ms;
      sums.compiled.push([`${functionName(line)}${line.includes(') OSR') ? ' OSR' : ''}`, ms]);
    } else if (line.startsWith('[bailout (kind:')) {
      sums.deopts++;
      const reason = /reason: ([^)]*)\)/.exec(line)?.[1] ?? '?';
      sums.deopted.push(`${functionName(line)} (${reason})`);
    }
  }
  return sums;
}

const functionName = (line: string): string => /<JSFunction ([^ >]*)/.exec(line)?.[1] || '(anonymous)';
