// node --import tsx agents/denylist/main.ts --socket PATH [--path /admin]... [--ip 10.0.0.0/8]... [--header name=value]...
import { parseArgs } from 'node:util';
import { startDenylistAgent } from './agent.ts';

const { values } = parseArgs({
  options: {
    socket: { type: 'string' },
    path: { type: 'string', multiple: true, default: [] },
    ip: { type: 'string', multiple: true, default: [] },
    header: { type: 'string', multiple: true, default: [] },
  },
});
if (!values.socket) {
  process.stderr.write('usage: denylist --socket PATH [--path P]... [--ip IP|CIDR]... [--header NAME=VALUE]...\n');
  process.exit(2);
}
const headers: Record<string, string[]> = {};
for (const h of values.header) {
  const eq = h.indexOf('=');
  const name = (eq < 0 ? h : h.slice(0, eq)).toLowerCase();
  (headers[name] ??= []).push(eq < 0 ? '*' : h.slice(eq + 1));
}
const agent = await startDenylistAgent(values.socket, { paths: values.path, ips: values.ip, headers });
process.stdout.write(`denylist agent listening on ${values.socket}\n`);
const stop = () => void agent.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
