// node --import tsx agents/echo/main.ts --socket /path/echo.sock [--name echo]
import { parseArgs } from 'node:util';
import { startEchoAgent } from './agent.ts';

const { values } = parseArgs({ options: { socket: { type: 'string' }, name: { type: 'string', default: 'echo' } } });
if (!values.socket) {
  process.stderr.write('usage: echo --socket PATH [--name NAME]\n');
  process.exit(2);
}
const agent = await startEchoAgent(values.socket, values.name);
process.stdout.write(`echo agent listening on ${values.socket}\n`);
const stop = () => void agent.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
