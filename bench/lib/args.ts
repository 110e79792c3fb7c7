// Command-line options of `npm run bench`. Pure: argv in, options out (errors are thrown with the
// reason, run.ts prints them).

export interface BenchOptions {
  durationS: number;
  rounds: number;
  /** null = every known target. */
  targets: string[] | null;
  /** null = every built-in scenario and every feature scenario found in bench/scenarios/. */
  scenarios: string[] | null;
  quick: boolean;
  /** Request rate of the open-loop (fixed-rate) scenario. */
  rate: number;
  connections: number;
  /** CPU the proxy under test is pinned to; the origin and load generator get loadCpu. */
  proxyCpu: number;
  loadCpu: number;
  /** false = no taskset (debugging on a busy machine; figures are then not comparable). */
  pin: boolean;
  outDir: string | null;
  list: boolean;
  help: boolean;
}

export const DEFAULTS: BenchOptions = {
  durationS: 10,
  rounds: 3,
  targets: null,
  scenarios: null,
  quick: false,
  rate: 10_000,
  connections: 50,
  proxyCpu: 0,
  loadCpu: 1,
  pin: true,
  outDir: null,
  list: false,
  help: false,
};

export const QUICK = { durationS: 2, rounds: 1 };

export const USAGE = `usage: npm run bench -- [options]
  --duration S        seconds of load per run (default ${DEFAULTS.durationS}; --quick: ${QUICK.durationS})
  --rounds N          interleaved rounds; figures are medians over rounds (default ${DEFAULTS.rounds}; --quick: ${QUICK.rounds})
  --targets a,b       targets to run (default: all but opt-in ones; see --list)
  --scenarios x,y     scenarios to run (default: all built-in + bench/scenarios/*.ts)
  --quick             smoke test: ${QUICK.durationS} s runs, ${QUICK.rounds} round
  --rate N            request rate of the fixed-rate scenario (default ${DEFAULTS.rate})
  --connections N     connections of every generator (default ${DEFAULTS.connections})
  --proxy-cpu N       core the proxy under test is pinned to (default ${DEFAULTS.proxyCpu})
  --load-cpu N        core of the origin and the load generator (default ${DEFAULTS.loadCpu})
  --no-pin            do not pin processes to cores (figures are then noisier)
  --out DIR           where to write <timestamp>.md/.json (default bench/results)
  --list              list targets and scenarios, then exit`;

function positive(name: string, text: string | undefined, integer: boolean): number {
  const v = Number(text);
  if (text === undefined || !Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) {
    throw new Error(`${name} needs a positive ${integer ? 'integer' : 'number'}, got ${JSON.stringify(text ?? null)}`);
  }
  return v;
}

function nonNegativeInt(name: string, text: string | undefined): number {
  const v = Number(text);
  if (text === undefined || !Number.isInteger(v) || v < 0) throw new Error(`${name} needs a CPU number, got ${JSON.stringify(text ?? null)}`);
  return v;
}

function list(name: string, text: string | undefined): string[] {
  const xs = (text ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (xs.length === 0) throw new Error(`${name} needs a comma-separated list`);
  return xs;
}

export function parseArgs(argv: readonly string[]): BenchOptions {
  const o: BenchOptions = { ...DEFAULTS };
  let duration: number | undefined;
  let rounds: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const value = (): string | undefined => (eq > 0 ? arg.slice(eq + 1) : argv[++i]);
    switch (name) {
      case '--duration': duration = positive(name, value(), true); break; // wrk takes whole seconds
      case '--rounds': rounds = positive(name, value(), true); break;
      case '--targets': o.targets = list(name, value()); break;
      case '--scenarios': o.scenarios = list(name, value()); break;
      case '--quick': o.quick = true; break;
      case '--rate': o.rate = positive(name, value(), false); break;
      case '--connections': o.connections = positive(name, value(), true); break;
      case '--proxy-cpu': o.proxyCpu = nonNegativeInt(name, value()); break;
      case '--load-cpu': o.loadCpu = nonNegativeInt(name, value()); break;
      case '--no-pin': o.pin = false; break;
      case '--out': o.outDir = value() ?? null; break;
      case '--list': o.list = true; break;
      case '-h': case '--help': o.help = true; break;
      default: throw new Error(`unknown option ${arg}\n${USAGE}`);
    }
  }
  // --quick sets the smoke-test defaults; an explicit --duration/--rounds still wins.
  o.durationS = duration ?? (o.quick ? QUICK.durationS : DEFAULTS.durationS);
  o.rounds = rounds ?? (o.quick ? QUICK.rounds : DEFAULTS.rounds);
  if (o.pin && o.proxyCpu === o.loadCpu) throw new Error('--proxy-cpu and --load-cpu must differ: the proxy gets a core of its own');
  return o;
}
