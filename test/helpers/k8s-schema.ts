// Validates rendered Kubernetes objects against the API schema: kubernetes-models for types and
// required fields, and @kubernetes/client-node's generated model metadata (attributeTypeMap)
// for field names, walked recursively, so a misspelled or misplaced field fails.
import * as clientNode from '@kubernetes/client-node';

interface Attribute {
  baseName: string;
  type: string;
}
type Model = { attributeTypeMap?: Attribute[] };
const models = clientNode as unknown as Record<string, Model | undefined>;

/** client-node's class for apiVersion/kind: apps/v1 Deployment -> V1Deployment, autoscaling/v2 -> V2... */
export function modelName(apiVersion: string, kind: string): string {
  const version = apiVersion.split('/').pop()!;
  return `${version.charAt(0).toUpperCase()}${version.slice(1)}${kind}`;
}

/** Every field name under `value` that the model `type` does not declare, as JSON paths. */
export function unknownFields(value: unknown, type: string, path = ''): string[] {
  const array = /^Array<(.+)>$/.exec(type);
  if (array) return Array.isArray(value) ? value.flatMap((v, i) => unknownFields(v, array[1]!, `${path}[${i}]`)) : [];
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) return value && typeof value === 'object' ? Object.entries(value).flatMap(([k, v]) => unknownFields(v, map[1]!, `${path}.${k}`)) : [];
  const attrs = models[type]?.attributeTypeMap;
  if (!attrs || value === null || typeof value !== 'object' || Array.isArray(value)) return []; // a scalar, IntOrString, or free-form object
  const byName = new Map(attrs.map((a) => [a.baseName, a.type]));
  return Object.entries(value).flatMap(([k, v]) => {
    const t = byName.get(k);
    return t === undefined ? [`${path}.${k} (not a field of ${type})`] : unknownFields(v, t, `${path}.${k}`);
  });
}

/** Problems with one object: kubernetes-models validation errors and unknown field names. */
export async function validateObject(obj: { apiVersion: string; kind: string }): Promise<string[]> {
  const problems: string[] = [];
  let mod: Record<string, new (data: unknown) => { validate(): void }>;
  try {
    mod = (await import(`kubernetes-models/${obj.apiVersion}`)) as typeof mod;
  } catch {
    return [`${obj.apiVersion} is not a Kubernetes API group/version kubernetes-models knows`];
  }
  const Model = mod[obj.kind];
  if (!Model) return [`${obj.apiVersion} has no kind ${obj.kind}`];
  try {
    new Model(obj).validate();
  } catch (e) {
    problems.push(`schema: ${(e as Error).message}`);
  }
  const name = modelName(obj.apiVersion, obj.kind);
  if (!models[name]?.attributeTypeMap) problems.push(`@kubernetes/client-node has no model ${name}`);
  else problems.push(...unknownFields(obj, name));
  return problems;
}
