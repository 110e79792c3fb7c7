// The engine's copy of a string: V8 interns property names, so `s` is returned as the one
// interned string with its content. The rule loop compares variable names with literals (`switch`)
// and looks them up in Maps keyed by literals or by other interned strings: interned strings
// compare by pointer, others by content each time (through the runtime for sliced strings, which
// substrings of the rule text are). For strings fixed at load time (names, keys, transformation
// chains, macro and setvar keys), never for request data.
export function intern(s: string): string;
export function intern(s: string | undefined): string | undefined;
export function intern(s: string | undefined): string | undefined {
  if (s === undefined) return undefined;
  const holder: Record<string, true> = {};
  holder[s] = true;
  for (const k in holder) return k;
  return s; // an array index ("0"): not interned as a name, and not a variable name either
}
