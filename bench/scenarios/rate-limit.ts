// Feature scenarios: a rate-limit filter on the catch-all route, local and Redis-backed. The limit
// is far above what one core can serve, so every request pays the limiter's cost and passes
// (a rejecting limiter would measure 429s instead). All load comes from 127.0.0.1, i.e. one hot
// key: for Redis that is one sorted set receiving every request. Reported as ratios to
// passthrough in the same round.
import type { FeatureScenario, ScenarioContext } from '../lib/scenario.ts';
import { startRedis, type RedisServer } from '../../test/helpers/redis.ts';

function withFilter(ctx: ScenarioContext, filterBody: string): string {
  const base = ctx.passthroughConfig();
  const withRoute = base.replace(/( {8}upstream "origin"\n)/, `$1        filters "rl"\n`);
  if (withRoute === base) throw new Error('the passthrough config no longer has the route line this scenario extends');
  return `${withRoute}\nfilters {\n    filter "rl" {\n        type "rate-limit"\n        ${filterBody}\n    }\n}\n`;
}

const local: FeatureScenario = {
  name: 'rate-limit-local',
  description: 'rate-limit filter, local token buckets, key client-ip, limit never reached',
  sentinelConfig: (ctx) => withFilter(ctx, 'max-rps 1000000000'),
};

let redis: RedisServer | undefined;
// The runner asks for the config before it calls setup(), so the port is chosen up front: a
// random high port (startRedis fails loudly in the unlikely case it is taken).
let redisPort = 0;

const redisBacked: FeatureScenario = {
  name: 'rate-limit-redis',
  description: 'rate-limit filter, Redis sliding window (Lua), key client-ip, limit never reached',
  async setup() {
    redis = await startRedis({ port: redisPort });
  },
  async teardown() {
    await redis?.stop();
    redis = undefined;
  },
  sentinelConfig(ctx) {
    redisPort = 20000 + Math.floor(Math.random() * 10000);
    return withFilter(ctx, `max-rps 1000000000\n        backend "redis"\n        redis-url "redis://127.0.0.1:${redisPort}"\n        redis-timeout-ms 100`);
  },
};

export const scenarios = [local, redisBacked];
