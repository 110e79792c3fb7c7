// `filter "id" { type "plugin"; module "./x.mjs"; config { ... } }`: an in-process filter written
// as a Fastify plugin (docs/architecture.md, "Writing a plugin filter").
import { Type } from 'typebox';
import { Enum } from '../../src/config/types-helpers.ts';

export const PluginFilterProperties = {
  /** the module's path, relative to the config file's directory (or absolute) */
  module: Type.Optional(Type.String()),
  /** free-form settings handed to the plugin as `opts.config` */
  config: Type.Optional(Type.Unknown()),
  /** bound on each hook call (onRequest, onResponse, onResponseBody and each body chunk) */
  'timeout-ms': Type.Optional(Type.Integer({ exclusiveMinimum: 0, default: 1000 })),
  /** what a throwing or timed-out hook does; default: the route's failure-mode */
  'failure-mode': Type.Optional(Enum(['open', 'closed'] as const)),
};
