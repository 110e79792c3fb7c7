// ARGS_JOINED (a Sentinel variable, the `hpp` extra rule set): each argument name's values joined
// with ',' as applications read a repeated parameter. ASP.NET's `Request.QueryString["q"]` /
// `Request.Params` and ASP.NET Core's `StringValues.ToString()` join them so, and Node code that
// puts `req.query.q` (an array from qs or querystring for `q=a&q=b`, `q[]=`, `q[0]=`, or a JSON
// array) into a string gets `Array.prototype.toString`'s ',' join. The CRS reads each value alone:
// `q=1' OR/*&q=*/1=1--` is two benign values to it and `1' OR/*,*/1=1--` to the application
// (session 30 WAF evasion audit).
import type { Item } from '../engine/collections.ts';

/** The name a value is filed under by an application that gathers arrays: `q[]`, `q[3]` and a
 * JSON array element `json.q.3` are `q` / `json.q` (qs merges `q=` and `q[]=` into one array). */
export function joinKey(name: string): string {
  if (name.endsWith(']')) {
    const open = name.lastIndexOf('[');
    if (open > 0 && /^\d*$/.test(name.slice(open + 1, -1))) return name.slice(0, open);
    return name;
  }
  if (name.startsWith('json.')) {
    const dot = name.lastIndexOf('.');
    if (dot > 4 && dot < name.length - 1 && /^\d+$/.test(name.slice(dot + 1))) return name.slice(0, dot);
  }
  return name;
}

/** One (key, joined value) per name with two or more values, in each source (the query's, the
 * body's: `Request.Query` / `Request.Form`) and across both (`Request.Params`) when both have it;
 * a join already made is not repeated. Values in order of arrival. */
export function joinedArgs(sources: readonly (readonly Item[])[]): { key: string; value: string }[] {
  if (!anyRepeated(sources)) return NONE;
  const out: { key: string; value: string }[] = [];
  const all = new Map<string, { values: string[]; sources: number }>();
  let seen: Set<string> | undefined;
  for (const items of sources) {
    const here = new Map<string, string[]>();
    for (const it of items) {
      const k = joinKey(it.key);
      const list = here.get(k);
      if (list) list.push(it.value);
      else here.set(k, [it.value]);
    }
    for (const [k, values] of here) {
      if (values.length > 1) {
        const value = values.join(',');
        (seen ??= new Set()).add(`${k}\0${value}`);
        out.push({ key: k, value });
      }
      const acc = all.get(k);
      if (acc) {
        acc.values.push(...values);
        acc.sources++;
      } else all.set(k, { values: values.slice(), sources: 1 });
    }
  }
  for (const [k, acc] of all) {
    if (acc.sources < 2) continue;
    const value = acc.values.join(',');
    if (seen?.has(`${k}\0${value}`)) continue;
    out.push({ key: k, value });
  }
  return out;
}

const NONE: { key: string; value: string }[] = [];

/** Whether two arguments share a join key. Most requests repeat no name: a pairwise look over the
 * few keys, before any map or string is made (the set's cost on a benign GET). */
function anyRepeated(sources: readonly (readonly Item[])[]): boolean {
  let keys: string[] | undefined;
  for (const items of sources) {
    for (let i = 0; i < items.length; i++) {
      const k = joinKey(items[i]!.key);
      if (keys === undefined) keys = [k];
      else if (keys.includes(k)) return true;
      else keys.push(k);
    }
  }
  return false;
}
