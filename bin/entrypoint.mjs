#!/usr/bin/env node
// Container entrypoint (exec form, no shell): the first argument picks the program, the rest
// are its arguments. `sentinel run -c /etc/sentinel/config.kdl`, `sentinel-waf --socket ...`;
// anything else runs the gateway with all the arguments.
import cluster from 'node:cluster';
import { launch } from './launch.mjs';

const programs = {
  sentinel: 'src/cli/main',
  'sentinel-waf': 'src/waf/agent/main',
  'agent-echo': 'agents/echo/main',
  'agent-denylist': 'agents/denylist/main',
};
const isProgram = (name) => name !== undefined && Object.hasOwn(programs, name);
const first = process.argv[2];
let chosen = 'sentinel';
if (isProgram(first)) {
  chosen = first;
  // The programs read process.argv.slice(2): drop the selector so they see only their own flags.
  process.argv.splice(2, 1);
  process.env.SENTINEL_ENTRYPOINT_PROGRAM = first;
} else if (cluster.isWorker && isProgram(process.env.SENTINEL_ENTRYPOINT_PROGRAM)) {
  // A node:cluster worker (sentinel-waf --workers, the gateway's workers) re-runs this file with
  // the primary's argv, selector already removed: the primary's choice comes with its environment.
  chosen = process.env.SENTINEL_ENTRYPOINT_PROGRAM;
}
await launch(programs[chosen]);
