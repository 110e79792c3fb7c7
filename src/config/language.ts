// The config language of one composition: the core's schemas with the keys the features add,
// the schemas of the filter types, and the features' compile steps. compose()
// (src/pipeline/feature.ts) builds it once from the manifests; the config compiler reads every
// config with it, so src/config/ needs no feature module.
import type { TSchema } from 'typebox';
import { configSchemas, type ConfigSchemas, type FilterTypeSchemas, type SchemaFragment, type SchemaKeys } from './schema.ts';
import type { ConfigCompileSteps } from './compile.ts';

/** What one feature contributes to the config language (from its manifest). */
export interface ConfigLanguagePart {
  /** the feature's name (named in the error when two features give the same key) */
  readonly name: string;
  readonly schema?: SchemaFragment;
  readonly filterTypes?: FilterTypeSchemas;
  readonly compile?: ConfigCompileSteps;
}

export interface ConfigLanguage {
  readonly schemas: ConfigSchemas;
  /** per filter type: its keys besides `type` (a type without an entry is known but does nothing) */
  readonly filterTypes: FilterTypeSchemas;
  /** the features' compile steps, in manifest order */
  readonly steps: readonly ConfigCompileSteps[];
}

const BLOCKS: readonly (keyof SchemaKeys)[] = ['top', 'listener', 'route', 'policies', 'upstream', 'observability'];

/** Puts the parts together; throws when two parts give the same key or filter type. */
export function configLanguage(parts: readonly ConfigLanguagePart[]): ConfigLanguage {
  const blocks = Object.fromEntries(BLOCKS.map((b) => [b, {}])) as Record<keyof SchemaKeys, Record<string, TSchema>>;
  const filterTypes: Record<string, Readonly<Record<string, TSchema>>> = {};
  const owners = new Map<string, string>();
  const claim = (what: string, part: string): void => {
    const prev = owners.get(what);
    if (prev !== undefined) throw new Error(`${what} is given by both "${prev}" and "${part}"`);
    owners.set(what, part);
  };
  for (const p of parts) {
    for (const block of BLOCKS) {
      // A fragment's key types are declared per feature (SchemaKeys); at run time each is a schema.
      const keys = p.schema?.[block] as Readonly<Record<string, TSchema | undefined>> | undefined;
      for (const [key, schema] of Object.entries(keys ?? {})) {
        if (schema === undefined) continue;
        claim(`config key ${block} > ${key}`, p.name);
        blocks[block][key] = schema;
      }
    }
    for (const [type, keys] of Object.entries(p.filterTypes ?? {})) {
      claim(`filter type "${type}"`, p.name);
      filterTypes[type] = keys;
    }
  }
  return {
    // every declared key is given by the manifest that declares it (the schema-drift test sees a missing one)
    schemas: configSchemas(blocks as unknown as SchemaKeys),
    filterTypes,
    steps: parts.flatMap((p) => (p.compile ? [p.compile] : [])),
  };
}
