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
