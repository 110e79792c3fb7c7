// Filter type -> factory. Feature plugins export their factory; the generation builds one
// RequestFilter per `filter "id"` from here. A type without a factory is reported at config
// compile time ("not implemented yet") and contributes no filter.
import type { FilterFactory, RequestFilter } from './types.ts';
import type { HeaderOpsConfig } from '../config/compile.ts';
import { applyHeaderOps } from '../server/headers.ts';

/** `filter type "headers" { phase; set {}; add {}; remove ... }` */
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

export const filterFactories: Record<string, FilterFactory> = {
  headers: createHeadersFilter,
};
