// The headers feature: `filter "id" { type "headers"; phase; set {}; add {}; remove ... }`.
import { Type } from 'typebox';
import { defineFeature, usesFilterType } from '../../src/pipeline/feature.ts';
import { Enum } from '../../src/config/types-helpers.ts';
import type { FilterFactory, RequestFilter } from '../../src/pipeline/types.ts';
import type { HeaderOpsConfig } from '../../src/config/compile.ts';
import { applyHeaderOps } from '../../src/server/headers.ts';


/** `filter "id" { type "headers" }`: its keys besides `type`. */
export const HeadersFilterProperties = {
  phase: Type.Optional(Enum(['request', 'response', 'both'] as const, { default: 'request' })),
  set: Type.Optional(Type.Record(Type.String(), Type.String())),
  add: Type.Optional(Type.Record(Type.String(), Type.String())),
  remove: Type.Optional(Type.Array(Type.String())),
};

export const createHeadersFilter: FilterFactory = (id, config): RequestFilter => {
  const ops: HeaderOpsConfig = {
    rename: [],
    set: Object.entries((config.set as Record<string, string> | undefined) ?? {}),
    add: Object.entries((config.add as Record<string, string> | undefined) ?? {}),
    remove: (config.remove as string[] | undefined) ?? [],
  };
  const phase = (config.phase as string | undefined) ?? 'request';
  const onRequest = phase === 'request' || phase === 'both';
  const onResponse = phase === 'response' || phase === 'both';
  return {
    id,
    type: 'headers',
    ...(onRequest
      ? {
          onRequest(ctx) {
            applyHeaderOps(ctx.upstreamHeaders, ops);
            return undefined;
          },
        }
      : {}),
    ...(onResponse
      ? {
          onResponse(_ctx, res) {
            applyHeaderOps(res.headers, ops);
          },
        }
      : {}),
  };
};

export const headersFeature = defineFeature({
  name: 'headers',
  dependencies: [],
  uses: (config) => usesFilterType(config, 'headers'),
  filterTypes: { headers: HeadersFilterProperties },
  explainFilter(_config, filter) {
    if (filter.type !== 'headers') return undefined;
    const c = filter.config as { phase?: string; set?: Record<string, string>; add?: Record<string, string>; remove?: string[] };
    return { phase: c.phase ?? 'request', ...(c.set ? { set: c.set } : {}), ...(c.add ? { add: c.add } : {}), ...(c.remove ? { remove: c.remove } : {}) };
  },
  register(_app, host) {
    host.filterType('headers', createHeadersFilter);
  },
});

export default headersFeature;
