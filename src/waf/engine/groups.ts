// Links grouped by what they read (issue #16): links with the same selector list (exclusions
// included) select the same items in a transaction, so what the miss memo knows about those
// items is summed up once per group and phase run, not once per link and selector. CRS names the
// same list in many links (`REQUEST_COOKIES|REQUEST_COOKIES_NAMES|ARGS_NAMES|ARGS|XML:/*|XML://@*`
// in 38 links a PL1 GET evaluates, 17 more with REQUEST_FILENAME...): each visited 4-6 selectors
// to find the one new value (the query's counter) left after the known misses.
//
// The summary (Transaction.groupSummary): `all`, the AND of the parts' known-miss bitsets (a whole
// collection's MissSplit.all, a single item's own bits), and `fresh`, the items those bitsets do
// not cover (a collection split's fresh items, items little known), in selector then item order.
// A link whose bit `all` has is evaluated on `fresh` alone (each item still checked against its own
// bits): every other item is a known miss for it, so it would not have matched, run an action or
// changed a cache. Other links take the ordinary selector walk. Why it stays exact:
// - only selectors whose items cannot change while a phase's rules run are grouped (built-in
//   collections, which only the request/response readers fill, between phases; stored scalars,
//   whose only writer, setScalar, invalidates every summary); TX, MATCHED_*, persistent
//   collections, computed scalars and counts (`&ARGS` is one item even for an empty collection)
//   make a link ungrouped;
// - a summary belongs to one transaction and one phase run (a stamp taken at each phase run and
//   each setScalar), so no other transaction's items and no earlier phase's are ever read;
// - memo bits are only ever set: an AND taken earlier in the phase run has no bit the items lack;
// - the link's own exclusions are part of the group's key and filter `fresh` (a superset's AND
//   is still right for the subset); a link with targets removed by a ctl at run time and a
//   transaction with an XML body (XML selectors are left out of the key) take the ordinary walk;
// - impure links (an operator parameter with a macro) are not grouped: the memo does not apply.
import type { MissBits } from './memo.ts';
import type { Rule, RuleVariable } from './rule.ts';

export interface ReadGroup {
  /** The selectors in order, without exclusions and XML selectors (not counts). */
  readonly vars: RuleVariable[];
  /** Per selector of `vars`: 1 when an exclusion of `excl` names its variable. */
  readonly excluded: Uint8Array;
  readonly excl: RuleVariable[];
  /** XML selectors were left out of `vars`: the group holds only without an XML body. */
  readonly xml: boolean;
  // The summary of the transaction and phase run whose stamp `stamp` is (the rule loop is
  // synchronous and never nested; Transaction.groupSummary fills it).
  stamp: number;
  /** Links of the group evaluated under `stamp` (the summary is made for the first). */
  uses: number;
  /** AND of the parts' known-miss bits (one word per 32 links; the group's own buffer). */
  readonly all: Uint32Array;
  /** The bitsets `all` is the AND of (the first `partCount`), and how many summaries reused it. */
  readonly parts: MissBits[];
  partCount: number;
  age: number;
  /** The items not covered by `all`, with their selectors: [freshStart, freshEnd) of the
   * transaction's lists (Transaction.groupItems / groupVars). */
  freshStart: number;
  freshEnd: number;
  /** The group for the links of this one whose targets a ctl removed (`underList`, a list of the
   * transaction's removedLists: the shared first removal's list is the same array every time). */
  underList: readonly RuleVariable[] | undefined;
  under: ReadGroup | undefined;
}

/** Whether the rule loop may group a selector that is not an exclusion: see the header. */
function groupable(v: RuleVariable): boolean {
  if (v.count) return false;
  return v.cid >= 0 || v.sid >= 0 || v.name === 'XML';
}

function selectorKey(v: RuleVariable): string {
  return `${v.exclude ? '!' : ''}${v.name}${v.key !== undefined ? `:${v.key}` : v.keyRegex !== undefined ? `:/${v.keyRegex.source}/` : ''}`;
}

/** A group reading `vars` (less `excl`), with no summary yet. `words`: the known-miss bit words (one bit a link). */
function newGroup(vars: RuleVariable[], excl: RuleVariable[], xml: boolean, words: number): ReadGroup {
  return {
    vars,
    excluded: Uint8Array.from(vars, (v) => (excl.some((e) => e.name === v.name) ? 1 : 0)),
    excl,
    xml,
    stamp: 0,
    uses: 0,
    all: new Uint32Array(words),
    parts: [],
    partCount: -1,
    age: 0,
    freshStart: 0,
    freshEnd: 0,
    underList: undefined,
    under: undefined,
  };
}

/** Gives every pure link whose selectors are all groupable its group (links with the same
 * selector list share one); other links get undefined. `links`: the rule set's link count. */
export function assignReadGroups(starters: readonly Rule[], links: number): number {
  const byKey = new Map<string, ReadGroup>();
  const words = (links + 31) >> 5;
  for (const starter of starters) {
    for (let link: Rule | undefined = starter; link; link = link.chained) {
      link.group = undefined;
      if (!link.pure) continue;
      const vars = link.variables.filter((v) => !v.exclude);
      if (vars.length === 0 || !vars.every(groupable)) continue;
      const key = link.variables.map(selectorKey).join('|');
      let g = byKey.get(key);
      if (g === undefined) {
        const excl = link.variables.filter((v) => v.exclude);
        const kept = vars.filter((v) => v.name !== 'XML');
        g = newGroup(kept, excl, kept.length !== vars.length, words);
        byKey.set(key, g);
      }
      link.group = g;
    }
  }
  return byKey.size;
}

/** The group a transaction's links of `g` read once a ctl removed `removed` from their targets
 * (CRS 941010 removes REQUEST_FILENAME from the 27 xss-perf-disable links on nearly every
 * request, and each of them took the selector walk): the ctl's targets are exclusions like the
 * link's own, and a selector they exclude whole (no key) is left out, its items never read (its
 * value is never evaluated by those links, so ANDing its bits in would leave their bits out).
 * Kept on `g` for the last list seen: the shared first removal's list is the same array in every
 * transaction; another list makes a new group (right, only not reused). */
export function groupUnder(g: ReadGroup, removed: readonly RuleVariable[]): ReadGroup {
  if (g.underList === removed) return g.under!;
  const excl = [...g.excl, ...removed];
  const vars = g.vars.filter((v) => !removed.some((e) => e.name === v.name && e.lkey === undefined && e.keyRegex === undefined));
  const under = newGroup(vars, excl, g.xml, g.all.length);
  g.underList = removed;
  g.under = under;
  return under;
}

let stamps = 0;

/** Whether the rule loop uses the groups (on by default; tests compare both). */
export let groupingEnabled = true;

/** Turns the grouped evaluation on or off (tests and benches compare both). */
export function setGrouping(on: boolean): void {
  groupingEnabled = on;
}

/** A new summary stamp (a phase run's, or after a scalar changed). */
export function nextGroupStamp(): number {
  return ++stamps;
}
