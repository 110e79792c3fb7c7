// The tracing variants a bench names on its command line (bench/tracing.ts --rates, bench/v8-state.ts
// --tracing): "off", a sampling rate, and suffixes that change one thing about it.
// Table-tested in test/unit/bench/tracing-variants.test.ts.

export interface Variant {
  name: string;
  /** sampling rate, or undefined for tracing off */
  rate: number | undefined;
  /** `RATE:noexport`: spans recorded and encoded, none sent while the gateway runs (queue and batch larger than any run, scheduled-delay an hour) */
  noExport?: boolean;
  /** `RATE:inline` / `RATE:thread`: `export-thread #false` (the default: the exporter's HTTP requests on the request thread) / `#true` (in a worker thread) */
  exportThread?: boolean;
  /**
   * `off:tp`: tracing off, and the route's request-headers policy sets a constant `traceparent` of
   * an unsampled root's length upstream (ordinary config, no bench-only knob): the header's cost
   * without any of the tracing code, so `0% / off tp` is what the tracing code itself costs.
   */
  upstreamTraceparent?: boolean;
  /**
   * `RATE:one`: before its warm-up the gateway gets ONE request carrying a client `traceparent`
   * with flags 01, which parent-based sampling records at any rate (0 included): does one
   * sampled request (and its export, unless `:noexport` too) change what every later request
   * costs? (docs/tracing.md "Session 30")
   */
  oneSampled?: boolean;
  /**
   * `RATE:lone`: the control for `:one`: the same lone request before the warm-up with the same
   * client `traceparent` flagged NOT sampled (flags 00), so that what differs is the recording only.
   */
  loneUnsampled?: boolean;
}

export const rateName = (rate: number | undefined): string => (rate === undefined ? 'off' : `${rate * 100}%`);

const SUFFIXES = ['noexport', 'inline', 'thread', 'one', 'lone'] as const;

/**
 * "off,0.01,1,0.01:noexport,0.01:thread,off:tp,0:one,0:one:noexport" -> variants; "off" is tracing
 * off, a number a sampling rate, then suffixes (see Variant): at most one of noexport / inline /
 * thread, and one of `one` / `lone`.
 */
export function parseRates(list: string): Variant[] {
  return list
    .split(',')
    .map((r) => r.trim())
    .filter(Boolean)
    .map((r): Variant => {
      if (r === 'off:tp') return { name: 'off tp', rate: undefined, upstreamTraceparent: true };
      const [num, ...suffixes] = r.split(':') as [string, ...string[]];
      const rate = num === 'off' ? undefined : Number(num);
      if (rate !== undefined && !(num !== '' && rate >= 0 && rate <= 1)) throw new Error(`sampling rate ${r}: expected off or 0..1`);
      const v: Variant = { name: rateName(rate), rate };
      if (suffixes.length === 0) return v;
      if (rate === undefined) throw new Error(`${r}: :${suffixes.join(':')} needs a sampling rate`);
      let exportKind: string | undefined;
      for (const s of suffixes) {
        if (!(SUFFIXES as readonly string[]).includes(s)) throw new Error(`${r}: expected RATE, RATE:noexport, RATE:inline, RATE:thread, RATE:one, RATE:lone or RATE:one:noexport`);
        if (s === 'one' || s === 'lone') {
          if (v.oneSampled || v.loneUnsampled) throw new Error(`${r}: at most one of :one, :lone`);
          if (s === 'one') v.oneSampled = true;
          else v.loneUnsampled = true;
        } else {
          if (exportKind !== undefined) throw new Error(`${r}: at most one of :noexport, :inline, :thread`);
          exportKind = s;
          if (s === 'noexport') v.noExport = true;
          else v.exportThread = s === 'thread';
        }
      }
      v.name = [v.name, ...suffixes].join(' ');
      return v;
    });
}

/** The client `traceparent` of a `RATE:one` gateway's one sampled request (the W3C example ids, flags 01). */
export const SAMPLED_CLIENT_TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
/** `RATE:lone`'s: the same ids, flags 00 */
export const UNSAMPLED_CLIENT_TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00';

/** The client `traceparent` of the lone request a variant gets before its warm-up, if any. */
export function loneRequestTraceparent(v: Variant): string | undefined {
  return v.oneSampled ? SAMPLED_CLIENT_TRACEPARENT : v.loneUnsampled ? UNSAMPLED_CLIENT_TRACEPARENT : undefined;
}
