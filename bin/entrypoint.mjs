#!/usr/bin/env node
// Container entrypoint (exec form, no shell): the first argument picks the program, the rest
// are its arguments. `sentinel run -c /etc/sentinel/config.kdl`, `sentinel-waf --socket ...`;
// anything else runs the gateway with all the arguments.
import { launch } from './launch.mjs';

const programs = {
  sentinel: 'src/cli/main',
  'sentinel-waf': 'src/waf/agent/main',
  'agent-echo': 'agents/echo/main',
  'agent-denylist': 'agents/denylist/main',
};
const first = process.argv[2];
const entry = first !== undefined && Object.hasOwn(programs, first) ? programs[first] : programs.sentinel;
// The programs read process.argv.slice(2): drop the selector so they see only their own flags.
if (first !== undefined && Object.hasOwn(programs, first)) process.argv.splice(2, 1);
await launch(entry);
