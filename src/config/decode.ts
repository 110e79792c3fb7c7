// Schema-driven KDL decoding with Sentinel's conventions (sentinel-reference.md §1.1).
// The TypeBox schema of a block is the single source of truth: it drives decoding, type
// checks, defaults, the exported JSON Schema and the did-you-mean suggestions.
//
// How a property of an Object schema is read from the KDL children of its node:
//   String/Integer/Number/Boolean/Literal-union  -> first argument of the child node `key`
//   Array of primitives                           -> all arguments of every `key` node
//   Array with { kdl: 'repeat' }                  -> one item per `key` node (objects or first args)
//   Array with { kdl: 'named', item: 'route' }    -> `key { route "id" {...} ... }`, id -> item.id
//   Record(String, primitive)                     -> `key { Name "value" ... }` (map)
//   Object                                        -> the child node: its arguments go, in order, to the
//                                                    object's `argKeys` (or its single `argKey`),
//                                                    properties and children to keys
// Options on any property schema: `aliases: string[]`; on Object schemas: `closed: 'warn' | 'error'`
// (unknown keys; default warn), `argKey` / `argKeys`.
// Nothing is dropped silently: a positional argument (or a property on a scalar setting) that no
// schema key receives is a config error naming the node path and file:line. Sentinel ignores
// surplus arguments, which hid mistakes such as `header "X-Tier" "gold"` read as presence only.
import type { TSchema } from 'typebox';

// TypeBox 1.x marks a schema's kind and optionality with non-enumerable string keys (0.34 used
// the Kind/OptionalKind symbols): read them through these two, and never rely on a spread copy
// keeping them.
const kindOf = (s: TSchema): string | undefined => (s as { '~kind'?: string })['~kind'];
const isOptional = (s: TSchema): boolean => (s as { '~optional'?: boolean })['~optional'] === true;
import type { KdlNode as Node, KdlValue as Value } from './kdl/types.ts';
import type { Diagnostic, DeprecationFix } from './diagnostics.ts';
import { didYouMean } from './diagnostics.ts';
import { locationOf } from './kdl-loader.ts';

type Json = string | number | boolean | null | Json[] | { [k: string]: Json };

interface SchemaMeta {
  kdl?: 'repeat' | 'named';
  item?: string;
  aliases?: string[];
  /** a legacy key that is read but does nothing: warned, and `sentinel migrate` removes it (the text says why) */
  ignored?: string;
  closed?: 'warn' | 'error';
  argKey?: string;
  argKeys?: string[];
  default?: unknown;
  properties?: Record<string, TSchema>;
  required?: string[];
  items?: TSchema;
  anyOf?: TSchema[];
  const?: unknown;
  patternProperties?: Record<string, TSchema>;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
}

function meta(s: TSchema): SchemaMeta {
  return s as unknown as SchemaMeta;
}

/** Extra advice for keys that Sentinel's own docs show but its parser never read. */
const KEY_HINTS: Record<string, string> = {
  agents: 'agents are configured in the top-level agents block and attached to routes with filters "<filter-id>"',
};

export class Decoder {
  readonly diagnostics: Diagnostic[] = [];
  /** keys of the block being decoded: a surplus argument equal to one is a missing `;` */
  private siblingKeys: ReadonlyMap<string, string> | undefined;

  error(path: string, message: string, node?: Node): void {
    const location = node ? locationOf(node) : undefined;
    this.diagnostics.push({ severity: 'error', path, message, ...(location ? { location } : {}) });
  }

  warn(path: string, message: string, node?: Node): void {
    const location = node ? locationOf(node) : undefined;
    this.diagnostics.push({ severity: 'warning', path, message, ...(location ? { location } : {}) });
  }

  /** Decodes the children (and the arguments/properties) of `node` as an Object schema. */
  decodeObject(schema: TSchema, node: Pick<Node, 'values' | 'properties' | 'children'>, path: string, self?: Node): Record<string, Json> {
    const m = meta(schema);
    const props = m.properties ?? {};
    const out: Record<string, Json> = {};
    const byName = new Map<string, string>();
    for (const [key, ps] of Object.entries(props)) {
      byName.set(key, key);
      for (const a of meta(ps).aliases ?? []) byName.set(a, key);
    }
    // Arguments -> argKeys in order (e.g. `target "h:p"`, `header "X-Tier" "gold"`, `backend "otlp" {}`).
    const argKeys = m.argKeys ?? (m.argKey ? [m.argKey] : []);
    for (let i = 0; i < node.values.length; i++) {
      const key = argKeys[i];
      if (key === undefined || !props[key]) {
        this.surplus(path, node.values, i, argKeys.length === 0 ? 'this block takes no arguments' : `it takes at most ${argKeys.length} (${argKeys.join(', ')})`, self);
        break;
      }
      if (node.properties[key] !== undefined) this.error(path, `"${key}" is given both as argument ${i + 1} and as ${key}=`, self);
      const v = this.primitive(props[key]!, node.values[i]!, path, self);
      if (v !== undefined) out[key] = v;
    }
    for (const [pname, pval] of Object.entries(node.properties)) {
      const key = byName.get(pname);
      if (!key) {
        this.unknown(schema, path, `property ${pname}=`, pname, [...byName.keys()], self);
        continue;
      }
      if (key !== pname) this.deprecated(path, `"${pname}=" is a deprecated spelling; write "${key}="`, self, { kind: 'rename-property', from: pname, to: key });
      const v = this.primitive(props[key]!, pval, `${path} > ${pname}=`, self);
      if (v !== undefined) out[key] = v;
    }
    // Group children by canonical key, keeping order.
    const groups = new Map<string, Node[]>();
    for (const child of node.children) {
      const key = byName.get(child.name);
      if (!key) {
        this.unknown(schema, path, child.name, child.name, [...byName.keys()], child);
        continue;
      }
      const childPath = `${path ? path + ' > ' : ''}${child.name}`;
      if (key !== child.name) this.deprecated(childPath, `"${child.name}" is a deprecated spelling; write "${key}"`, child, { kind: 'rename-node', from: child.name, to: key });
      const why = meta(props[key]!).ignored;
      if (why !== undefined) {
        this.deprecated(childPath, `legacy key "${child.name}" is ignored (${why}); remove it`, child, { kind: 'remove-node', name: child.name });
        continue;
      }
      const list = groups.get(key) ?? [];
      list.push(child);
      groups.set(key, list);
    }
    const outer = this.siblingKeys;
    this.siblingKeys = byName;
    for (const [key, nodes] of groups) {
      const v = this.decodeProperty(props[key]!, nodes, `${path ? path + ' > ' : ''}${nodes[0]!.name}`);
      if (v !== undefined) out[key] = v;
    }
    this.siblingKeys = outer;
    for (const [key, ps] of Object.entries(props)) {
      if (out[key] === undefined && meta(ps).default !== undefined) out[key] = structuredClone(meta(ps).default) as Json;
      if (out[key] === undefined && (m.required ?? []).includes(key) && !isOptional(ps)) {
        this.error(path, `missing required "${key}"`, self);
      }
    }
    return out;
  }

  /** A deprecated form that is still accepted: a warning that carries its fix (`sentinel migrate`). */
  deprecated(path: string, message: string, node: Node | undefined, fix: DeprecationFix): void {
    const location = node ? locationOf(node) : undefined;
    this.diagnostics.push({ severity: 'warning', path, message, ...(location ? { location } : {}), fix });
  }

  /** Reports a positional argument no schema key receives (at most once per node). */
  surplus(path: string, values: readonly Value[], index: number, why: string, node?: Node): void {
    const extra = values.slice(index).map(showValue).join(' ');
    const v = values[index];
    const sibling = typeof v === 'string' && this.siblingKeys?.has(v) ? ` ("${v}" is a key here: two settings on one line need a ";" between them)` : '';
    this.error(path, `unexpected argument ${extra}: ${why}${sibling}`, node);
  }

  private unknown(schema: TSchema, path: string, what: string, name: string, known: string[], node?: Node): void {
    // a route setting written beside `policies` instead of in it (`max-body-size 10` in the route):
    // the operator believes a limit applies that does not
    const policies = (schema as { properties?: Record<string, { properties?: Record<string, unknown> }> }).properties?.policies;
    const misplaced = policies?.properties?.[name] !== undefined ? `: it belongs in policies { ${name} ... }` : '';
    const hint = KEY_HINTS[name] && path.startsWith('routes') ? `: ${KEY_HINTS[name]}` : misplaced;
    const msg = `unknown key "${what}"${didYouMean(name, known)}${hint}`;
    if (meta(schema).closed === 'error') this.error(path, `${msg}; valid keys: ${known.join(', ')}`, node);
    else this.warn(path, `${msg} (ignored)`, node);
  }

  private decodeProperty(schema: TSchema, nodes: Node[], path: string): Json | undefined {
    const m = meta(schema);
    const kind = kindOf(schema);
    if (kind === 'Array') {
      const item = m.items!;
      if (m.kdl === 'named') return this.decodeNamed(schema, nodes, path);
      if (m.kdl === 'repeat') {
        const out: Json[] = [];
        for (const n of nodes) {
          const v = this.decodeSingle(item, n, path);
          if (v !== undefined) out.push(v);
        }
        return out;
      }
      const out: Json[] = [];
      for (const n of nodes) {
        if (n.values.length === 0 && n.children.length === 0) this.error(path, 'expected one or more arguments', n);
        this.noExtras(path, n, 'a list of values');
        for (const v of n.values) {
          const d = this.primitive(item, v, path, n);
          if (d !== undefined) out.push(d);
        }
      }
      return out;
    }
    if (nodes.length > 1 && kind !== 'Record') {
      this.warn(path, `given ${nodes.length} times; the last one is used`, nodes[nodes.length - 1]);
    }
    if (kind === 'Record') {
      const out: Record<string, Json> = {};
      for (const n of nodes) {
        if (n.values.length > 0) this.surplus(path, n.values, 0, 'a map block takes no arguments: write its entries as children { Name "value" }', n);
        Object.assign(out, this.decodeRecord(schema, n, path));
      }
      return out;
    }
    return this.decodeSingle(schema, nodes[nodes.length - 1]!, path);
  }

  /** One node as a value of `schema` (object or primitive). */
  decodeSingle(schema: TSchema, node: Node, path: string): Json | undefined {
    const kind = kindOf(schema);
    if (kind === 'Object') return this.decodeObject(schema, node, path, node);
    if (kind === 'Union' && (meta(schema).anyOf ?? []).some((s) => kindOf(s) === 'Object')) {
      // A value that may be a scalar or a block, e.g. `load-balancing "sticky" { cookie-name ... }`.
      const obj = meta(schema).anyOf!.find((s) => kindOf(s) === 'Object')!;
      if (node.children.length > 0 || Object.keys(node.properties).length > 0) return this.decodeObject(obj, node, path, node);
      const scalar = { ...schema, '~kind': 'Union', anyOf: meta(schema).anyOf!.filter((s) => kindOf(s) !== 'Object') } as TSchema;
      return this.scalarNode(scalar, node, path);
    }
    if (kind === 'Record') return this.decodeRecord(schema, node, path);
    if (kind === 'Unknown') return kdlToJson(node);
    return this.scalarNode(schema, node, path);
  }

  private scalarNode(schema: TSchema, node: Node, path: string): Json | undefined {
    if (node.values.length === 0) {
      this.error(path, `expected a value (${describe(schema)}) as the first argument`, node);
      return undefined;
    }
    if (node.children.length > 0) this.warn(path, 'children are ignored here', node);
    if (node.values.length > 1) this.surplus(path, node.values, 1, `this setting takes one value (${describe(schema)})`, node);
    this.noExtras(path, node, describe(schema));
    return this.primitive(schema, node.values[0]!, path, node);
  }

  /** Properties (`k=v`) on a scalar or list setting are not read: refuse them. */
  private noExtras(path: string, node: Node, what: string): void {
    for (const k of Object.keys(node.properties)) this.error(path, `unexpected property ${k}=: this setting takes ${what}, not properties`, node);
  }

  private decodeRecord(schema: TSchema, node: Node, path: string): Record<string, Json> {
    const valueSchema = Object.values(meta(schema).patternProperties ?? {})[0] as TSchema;
    const out: Record<string, Json> = {};
    for (const c of node.children) {
      const v = this.decodeSingle(valueSchema, c, `${path} > ${c.name}`);
      if (v !== undefined) out[c.name] = v;
    }
    return out;
  }

  private decodeNamed(schema: TSchema, nodes: Node[], path: string): Json[] {
    const m = meta(schema);
    const item = m.items!;
    const itemName = m.item!;
    const out: Json[] = [];
    const seen = new Set<string>();
    for (const parent of nodes) {
      if (parent.values.length > 0) this.surplus(path, parent.values, 0, `write ${itemName} "<id>" { ... } inside the block`, parent);
      for (const k of Object.keys(parent.properties)) this.error(path, `unexpected property ${k}=: write ${itemName} "<id>" { ... } inside the block`, parent);
      for (const c of parent.children) {
        if (c.name !== itemName) {
          this.error(path, `unexpected "${c.name}": expected ${itemName} "<id>" { ... }${didYouMean(c.name, [itemName])}`, c);
          continue;
        }
        const id = c.values[0];
        if (typeof id !== 'string' || id === '') {
          this.error(`${path} > ${itemName}`, `expected an id string as the first argument: ${itemName} "<id>" { ... }`, c);
          continue;
        }
        const p = `${path} > ${itemName} "${id}"`;
        if (seen.has(id)) {
          this.error(p, `duplicate ${itemName} id "${id}"`, c);
          continue;
        }
        seen.add(id);
        if (c.values.length > 1) this.surplus(p, c.values, 1, `${itemName} takes one argument, its id`, c);
        const obj = this.decodeObject(item, { values: [], properties: c.properties, children: c.children }, p, c);
        out.push({ id, ...obj });
      }
    }
    return out;
  }

  /** A KDL value checked against a primitive schema; undefined (with an error) when it does not fit. */
  primitive(schema: TSchema, v: Value, path: string, node?: Node): Json | undefined {
    const kind = kindOf(schema);
    const m = meta(schema);
    const got = v === null ? '#null' : typeof v === 'string' ? `string "${v}"` : `${typeof v} ${String(v)}`;
    switch (kind) {
      case 'String':
        if (typeof v === 'string') return v;
        break;
      case 'Integer':
        if (typeof v === 'number' && Number.isInteger(v)) return this.range(m, v, path, node);
        break;
      case 'Number':
        if (typeof v === 'number') return this.range(m, v, path, node);
        break;
      case 'Boolean':
        if (typeof v === 'boolean') return v;
        if (v === 'true' || v === 'false') {
          this.error(path, `expected a boolean (#true or #false), got ${got}: KDL 2.0 strings are not booleans`, node);
          return undefined;
        }
        break;
      case 'Literal':
        if (typeof v === 'string' && typeof m.const === 'string' && v.toLowerCase() === m.const.toLowerCase()) return m.const;
        if (v === m.const) return v as Json;
        break;
      case 'Union': {
        const alts = m.anyOf ?? [];
        for (const alt of alts) {
          const sub = new Decoder();
          const r = sub.primitive(alt, v, path, node);
          if (r !== undefined && sub.diagnostics.length === 0) return r;
        }
        const lits = alts.filter((a) => kindOf(a) === 'Literal').map((a) => String(meta(a).const));
        if (lits.length > 0 && typeof v === 'string') {
          this.error(path, `invalid value "${v}": expected one of ${lits.join(', ')}${didYouMean(v, lits)}`, node);
          return undefined;
        }
        break;
      }
      case 'Unknown':
      case 'Any':
        return v as Json;
      default:
        break;
    }
    this.error(path, `expected ${describe(schema)}, got ${got}`, node);
    return undefined;
  }

  private range(m: SchemaMeta, v: number, path: string, node?: Node): number | undefined {
    if (m.minimum !== undefined && v < m.minimum) {
      this.error(path, `must be >= ${m.minimum}, got ${v}`, node);
      return undefined;
    }
    if (m.exclusiveMinimum !== undefined && v <= m.exclusiveMinimum) {
      this.error(path, `must be > ${m.exclusiveMinimum}, got ${v}`, node);
      return undefined;
    }
    if (m.maximum !== undefined && v > m.maximum) {
      this.error(path, `must be <= ${m.maximum}, got ${v}`, node);
      return undefined;
    }
    return v;
  }
}

/**
 * Free-form KDL -> JSON (agent `config {}` blocks): `k v` -> {k: v}, `k v1 v2` -> array,
 * `k { }` -> object, properties become keys, a bare node -> true.
 */
export function kdlToJson(node: Pick<Node, 'values' | 'properties' | 'children'>): Json {
  if (node.children.length === 0 && Object.keys(node.properties).length === 0) {
    if (node.values.length === 0) return true;
    if (node.values.length === 1) return node.values[0] as Json;
    return node.values as Json[];
  }
  const out: Record<string, Json> = {};
  for (const [k, v] of Object.entries(node.properties)) out[k] = v as Json;
  for (const c of node.children) out[c.name] = kdlToJson(c);
  return out;
}

function showValue(v: Value): string {
  return typeof v === 'string' ? JSON.stringify(v) : v === null ? '#null' : typeof v === 'boolean' ? `#${v}` : String(v);
}

export function describe(schema: TSchema): string {
  const kind = kindOf(schema);
  switch (kind) {
    case 'String':
      return 'a string';
    case 'Integer':
      return 'an integer';
    case 'Number':
      return 'a number';
    case 'Boolean':
      return 'a boolean (#true or #false)';
    case 'Literal':
      return JSON.stringify(meta(schema).const);
    case 'Union':
      return (meta(schema).anyOf ?? []).map(describe).join(' or ');
    case 'Object':
      return 'a block { ... }';
    default:
      return (kind ?? 'a value').toLowerCase();
  }
}
