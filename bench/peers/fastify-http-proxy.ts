// @fastify/http-proxy (reply-from over undici) with its defaults: the framework a Fastify user
// would reach for. Usage: node --import tsx bench/peers/fastify-http-proxy.ts --port P --upstream URL
import Fastify from 'fastify';
import httpProxy from '@fastify/http-proxy';
import { exitOnSignals, peerArgs } from './args.ts';

const { port, upstream } = peerArgs();
const app = Fastify({ logger: false });
await app.register(httpProxy, { upstream: upstream.origin });
await app.listen({ host: '127.0.0.1', port });
exitOnSignals(() => app.close());
