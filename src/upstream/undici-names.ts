// Header names the gateway itself writes on every upstream request, registered among undici's
// well-known header names. undici's Request checks each header name it does not know: two misses
// in its name record (`LookupIterator` in the runtime), `toLowerCase` and the token check (a regex
// for names of 12 characters or more): ~6 k instructions a request for the seven names
// forwardHeaders adds (bench/tracing-header.ts variant `known`, docs/architecture.md "Session 26"),
// ~0.25 k for `traceparent` counted in a gateway (docs/tracing.md "Session 26 (trace26)").
// Registered, a name is found at the first lookup; its value is still checked as every value is,
// and only these exact lower-case spellings skip the name check (a client's `X-Real-IP` is checked
// as before). undici has no public form for this: the record is module state of
// `lib/core/constants.js` (no "exports" map, so the path resolves), written only if it is there and
// does not know the name; another layout leaves every name checked as before.
import { createRequire } from 'node:module';

/** The names forwardHeaders (src/server/headers.ts) adds to every upstream request. */
export const GATEWAY_HEADER_NAMES = ['x-forwarded-for', 'x-real-ip', 'x-forwarded-proto', 'x-forwarded-host', 'x-correlation-id', 'x-trace-id', 'x-forwarded-by'] as const;

let record: Record<string, string | undefined> | null | undefined;

function undiciNameRecord(): Record<string, string | undefined> | null {
  if (record !== undefined) return record;
  record = null;
  try {
    const r = (createRequire(import.meta.url)('undici/lib/core/constants.js') as { headerNameLowerCasedRecord?: unknown }).headerNameLowerCasedRecord;
    if (r !== null && typeof r === 'object' && Object.isExtensible(r)) record = r as Record<string, string | undefined>;
  } catch {
    // another undici layout: names stay checked as before
  }
  return record;
}

/**
 * Registers lower-case header `names` (valid tokens, spelled as the gateway writes them) among
 * undici's well-known names (idempotent); true when undici's record now knows every one of them.
 */
export function registerKnownHeaderNames(names: readonly string[]): boolean {
  const known = undiciNameRecord();
  if (known === null) return false;
  let all = true;
  for (const name of names) {
    if (!/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(name)) throw new Error(`not a lower-case header name token: ${JSON.stringify(name)}`);
    if (known[name] === undefined) known[name] = name;
    all &&= known[name] === name;
  }
  return all;
}
