// Feature scenario `waf-pl1`: the sentinel-waf agent (OWASP CRS v4 at paranoia level 1, blocking)
// on request headers and bodies of every request, measured against Sentinel passthrough. The
// CRS is read from ../shared/conformance/crs (or CRS_DIR), passed to the agent with --crs-dir.
import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import type { FeatureScenario, ScenarioContext } from '../lib/scenario.ts';
import { crsDir } from '../../test/unit/waf-regex/crs-rules.ts';

const REPO = resolve(import.meta.dirname, '..', '..');
let proc: ChildProcess | undefined;
const socketOf = (ctx: ScenarioContext) => join(ctx.tmpDir, 'waf-pl1.sock');

export const scenarios: FeatureScenario[] = [
  {
    name: 'waf-pl1',
    description: 'sentinel-waf agent, CRS v4 paranoia level 1, blocking, request headers + body',
    sentinelConfig(ctx) {
      const base = ctx.passthroughConfig();
      const withFilter = base.replace(/( {8}upstream "origin"\n)/, `$1        filters "waf"\n`);
      if (withFilter === base) throw new Error('the passthrough config no longer has the route line this scenario extends');
      return `${withFilter}
agents {
    agent "waf" {
        unix-socket "${socketOf(ctx)}"
        events "request_headers" "request_body"
        timeout-ms 1000
    }
}
filters {
    filter "waf" {
        type "agent"
        agent "waf"
        failure-mode "closed"
    }
}
`;
    },
    async setup(ctx) {
      proc = spawn(process.execPath, [join(REPO, 'bin', 'sentinel-waf.mjs'), '--socket', socketOf(ctx), '--crs-dir', crsDir, '--paranoia-level', '1', '--mode', 'blocking'], {
        cwd: REPO,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      const p = proc;
      await new Promise<void>((ok, fail) => {
        p.stderr!.on('data', (c: Buffer) => c.toString().includes('listening') && ok());
        p.once('exit', (code) => fail(new Error(`sentinel-waf exited (${code})`)));
      });
    },
    async teardown() {
      const p = proc;
      proc = undefined;
      if (p && p.exitCode === null) {
        p.kill('SIGTERM');
        await new Promise((r) => p.once('exit', r));
      }
    },
  },
];
