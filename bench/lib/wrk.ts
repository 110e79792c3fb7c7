// Parsing wrk 4.x output (the closed-loop generator). Pure: text in, numbers out. wrk prints times
// with unit suffixes (us, ms, s, m, h), counts with k/M/G (powers of 1000) and sizes with
// B/KB/MB/GB/TB (powers of 1024).

export interface WrkResult {
  requests: number;
  durationS: number;
  requestsPerSec: number;
  transferBytesPerSec: number;
  latencyMs: { avg: number; stdev: number; max: number; p50: number; p75: number; p90: number; p99: number };
  socketErrors: { connect: number; read: number; write: number; timeout: number };
  non2xx3xx: number;
}

const MS_PER_UNIT: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const SIZE_UNITS: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };

/** "752.15us" -> 0.75215 (milliseconds). */
export function parseWrkTimeMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text.trim());
  if (!m) throw new Error(`wrk: cannot read the time "${text}"`);
  // Divide for microseconds: 950 / 1000 is exactly 0.95, 950 * 0.001 is not.
  return m[2] === 'us' ? Number(m[1]) / 1000 : Number(m[1]) * MS_PER_UNIT[m[2]!]!;
}

/** "161.81MB" -> bytes. */
export function parseWrkSize(text: string): number {
  const m = /^([\d.]+)(B|KB|MB|GB|TB)$/.exec(text.trim());
  if (!m) throw new Error(`wrk: cannot read the size "${text}"`);
  return Number(m[1]) * SIZE_UNITS[m[2]!]!;
}

export function parseWrkOutput(text: string): WrkResult {
  const need = (re: RegExp, what: string): RegExpExecArray => {
    const m = re.exec(text);
    if (!m) throw new Error(`wrk output has no ${what} line:\n${text.slice(0, 2000)}`);
    return m;
  };
  const lat = need(/^\s*Latency\s+(\S+)\s+(\S+)\s+(\S+)\s+\S+\s*$/m, 'Latency');
  const total = need(/^\s*(\d+) requests in ([\d.]+\w+), (\S+) read\s*$/m, '"N requests in"');
  const rps = need(/^Requests\/sec:\s+([\d.]+)\s*$/m, 'Requests/sec');
  const transfer = need(/^Transfer\/sec:\s+(\S+)\s*$/m, 'Transfer/sec');
  const dist = (p: string): number => parseWrkTimeMs(need(new RegExp(`^\\s*${p}%\\s+(\\S+)\\s*$`, 'm'), `${p}% latency (run wrk with --latency)`)[1]!);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  return {
    requests: Number(total[1]),
    durationS: parseWrkTimeMs(total[2]!) / 1000,
    requestsPerSec: Number(rps[1]),
    transferBytesPerSec: parseWrkSize(transfer[1]!),
    latencyMs: {
      avg: parseWrkTimeMs(lat[1]!),
      stdev: parseWrkTimeMs(lat[2]!),
      max: parseWrkTimeMs(lat[3]!),
      p50: dist('50'),
      p75: dist('75'),
      p90: dist('90'),
      p99: dist('99'),
    },
    socketErrors: {
      connect: Number(sock?.[1] ?? 0),
      read: Number(sock?.[2] ?? 0),
      write: Number(sock?.[3] ?? 0),
      timeout: Number(sock?.[4] ?? 0),
    },
    non2xx3xx: Number(non2xx?.[1] ?? 0),
  };
}
