// Small TypeBox helpers for writing KDL block schemas (see decode.ts for the conventions).
import { Type, type TSchema, type TObject, type TProperties, type TObjectOptions, type TLiteral, type TUnion } from 'typebox';

/** A block whose unknown keys warn (Sentinel's ordinary blocks). */
export function Block<T extends TProperties>(props: T, opts: TObjectOptions & { argKey?: string; argKeys?: string[]; closed?: 'warn' | 'error' } = {}): TObject<T> {
  return Type.Object(props, { additionalProperties: false, ...opts });
}

/** A security-relevant block: unknown keys are hard errors (listener tls/sni/sni-certs). */
export function StrictBlock<T extends TProperties>(props: T, opts: TObjectOptions & { argKey?: string } = {}): TObject<T> {
  return Block(props, { ...opts, closed: 'error' });
}

/** `parent { item "id" { ... } }` collections. */
export function Named<T extends TSchema>(item: string, schema: T) {
  return Type.Optional(Type.Array(schema, { kdl: 'named', item }));
}

/** A node that may appear several times, one item per node. */
export function Repeated<T extends TSchema>(schema: T, opts: { aliases?: string[] } = {}) {
  return Type.Optional(Type.Array(schema, { kdl: 'repeat', ...opts }));
}

/** Durations: integer seconds or strings such as "30s", "5m", "1h", "250ms". */
export const Duration = Type.Union([Type.Number({ minimum: 0 }), Type.String({ pattern: '^\\d+(\\.\\d+)?(ms|s|m|h|d)?$' })]);

/** Sizes: integer bytes or strings such as "10MB", "512KiB". */
export const Size = Type.Union([Type.Integer({ minimum: 0 }), Type.String({ pattern: '^\\d+(\\.\\d+)?\\s*([kKmMgG]i?[bB]?|[bB])?$' })]);

// Typed as a union of a tuple of literals, so Static<> is the union of the values (inferred from
// the mapped array, TypeBox 1.x would see a union of nothing: never).
export function Enum<const T extends readonly string[]>(values: T, opts: { default?: T[number]; aliases?: string[] } = {}): TUnion<{ -readonly [K in keyof T]: TLiteral<T[K]> }> {
  return Type.Union(
    values.map((v) => Type.Literal(v)),
    opts,
  ) as TUnion<{ -readonly [K in keyof T]: TLiteral<T[K]> }>;
}

export function parseDurationMs(v: number | string | undefined, unitMs = 1000): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'number') return v * unitMs;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(v.trim());
  if (!m) throw new Error(`invalid duration "${v}" (expected e.g. 30, "30s", "5m", "250ms")`);
  const n = Number(m[1]);
  const unit = m[2];
  const mult = unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : unit === 'h' ? 3_600_000 : unit === 'd' ? 86_400_000 : unitMs;
  return n * mult;
}

export function parseSize(v: number | string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'number') return v;
  const m = /^(\d+(?:\.\d+)?)\s*([kKmMgG])?(i)?([bB])?$/.exec(v.trim());
  if (!m) throw new Error(`invalid size "${v}" (expected bytes or e.g. "10MB", "512KiB")`);
  const base = m[3] ? 1024 : 1000;
  const exp = m[2] ? ' kmg'.indexOf(m[2].toLowerCase()) : 0;
  // Sentinel reads "10MB" as 10 MiB (binary); keep that for compatibility.
  return Math.round(Number(m[1]) * (m[3] || m[2] ? 1024 : base) ** exp);
}
