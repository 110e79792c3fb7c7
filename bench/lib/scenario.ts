// The interface of feature scenarios: modules in bench/scenarios/*.ts that run Sentinel with a
// feature switched on (rate limit, agents, TLS, WAF...). Each is measured against plain Sentinel
// passthrough under the same load in the same round, and reported as a ratio to it.
// See bench/README.md ("Writing a feature scenario").

/** What load to send. Defaults: closed loop (wrk), GET /small (100 B), --connections. */
export interface LoadSpec {
  kind?: 'closed' | 'open';
  /** Request path; the origin answers /small (100 B) and /large (16 KiB), anything else with 100 B. */
  path?: string;
  /** Extra request headers, "Name: value". */
  headers?: string[];
  /** Extra wrk arguments (closed loop only), e.g. ['-s', 'bench/scenarios/post-body.lua']. */
  wrkArgs?: string[];
  /** Open loop only: requests per second (default: --rate). */
  rate?: number;
  connections?: number;
  /** https needs a TLS listener in sentinelConfig; wrk speaks TLS, the open-loop generator does not. */
  scheme?: 'http' | 'https';
}

export interface ScenarioContext {
  /** The bench origin, "127.0.0.1:PORT" (nginx: /small 100 B, /large 16 KiB). */
  origin: string;
  originPort: number;
  /** Where Sentinel must listen: "127.0.0.1:PORT". */
  listen: string;
  listenPort: number;
  /** A free "127.0.0.1:PORT" for the metrics endpoint. */
  metrics: string;
  /** A temp dir for this scenario's files (certificates, sockets, rule files); removed after the run. */
  tmpDir: string;
  repoRoot: string;
  /** The passthrough config (bench/configs/sentinel-passthrough.kdl) for this context, to extend. */
  passthroughConfig(): string;
}

export interface FeatureScenario {
  /** Short id used on the command line (--scenarios) and in the tables. */
  name: string;
  description: string;
  /** The KDL Sentinel runs with for this scenario. */
  sentinelConfig(ctx: ScenarioContext): string;
  /** Start helpers (an agent process, a redis-server...) before Sentinel starts; runs once per round. */
  setup?(ctx: ScenarioContext): Promise<void>;
  /** Stop what setup started; always called, even when the run failed. */
  teardown?(ctx: ScenarioContext): Promise<void>;
  load?: LoadSpec;
  /** Path that answers 200 once Sentinel is ready (default: load.path or /small). */
  readyPath?: string;
}

export function isFeatureScenario(x: unknown): x is FeatureScenario {
  const s = x as Partial<FeatureScenario> | null;
  return !!s && typeof s.name === 'string' && typeof s.description === 'string' && typeof s.sentinelConfig === 'function';
}
