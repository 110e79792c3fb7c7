// `traceparent` as one of undici's well-known header names. Every upstream request of a traced
// gateway carries it (an unsampled one too, flags 00: W3C propagation), and undici's Request
// checks each header name it does not know: two misses in its name record (`LookupIterator` in
// the runtime), `toLowerCase` and the token check, ~0.7-0.85 k instructions a request counted in
// the gateway (docs/tracing.md "Session 24", "Session 26"). Registered, the name is found at the
// first lookup; its value is still checked as every value is. undici has no public form for this:
// the record is module state of `lib/core/constants.js` (no "exports" map, so the path resolves),
// written only if it is there and does not know the name; another layout leaves it checked as before.
import { createRequire } from 'node:module';

const NAME = 'traceparent';

/** Registers `traceparent` (idempotent); true when undici's record now knows it. */
export function registerTraceparentName(): boolean {
  let record: unknown;
  try {
    record = (createRequire(import.meta.url)('undici/lib/core/constants.js') as { headerNameLowerCasedRecord?: unknown }).headerNameLowerCasedRecord;
  } catch {
    return false;
  }
  if (record === null || typeof record !== 'object') return false;
  const names = record as Record<string, string | undefined>;
  if (names[NAME] === undefined && Object.isExtensible(names)) names[NAME] = NAME;
  return names[NAME] === NAME;
}
