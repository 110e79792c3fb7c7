// The compress feature (docs/static-files.md, "The compress filter"): registration only.
// `filter "c" { type "compress" }` encodes responses (proxied ones and static files) with gzip,
// brotli or deflate as the client's Accept-Encoding asks.
import { defineFeature, usesFilterType } from '../../src/pipeline/feature.ts';
import { createCompressFilter } from './filter.ts';
import { CompressFilterProperties, compressSettings, validateCompressFilter } from './schema.ts';

export { validateCompressFilter } from './schema.ts';

export const compressFeature = defineFeature({
  name: 'compress',
  dependencies: [],
  uses: (config) => usesFilterType(config, 'compress'),
  filterTypes: { compress: CompressFilterProperties },
  validators: {
    filter: (f) => (f.type === 'compress' ? validateCompressFilter(f.id, f.config) : []),
  },
  explainFilter(_config, filter) {
    if (filter.type !== 'compress') return undefined;
    const s = compressSettings(filter.id, filter.config);
    return { algorithms: [...s.algorithms], 'min-size': s.minSize, level: s.level, 'content-types': [...s.contentTypes] };
  },
  register(_app, host) {
    host.filterType('compress', createCompressFilter);
  },
});

export default compressFeature;
