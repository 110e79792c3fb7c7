// Decoders of the extra rule sets (issue #16): what the CRS does not look inside. Inputs and
// outputs are latin1 "binary" strings (char code = byte), as everywhere in the engine.

/** Runs of the base64 / base64url alphabet long enough to carry a payload (>= 9 bytes). */
const BASE64_RUN = /[A-Za-z0-9+/_-]{12,}={0,2}/g;
const MIN_DECODED = 6;
/** Share of printable bytes a decoded run needs to count as text (random bytes score ~37%). */
const PRINTABLE_SHARE = 0.9;
const MAX_SEGMENTS = 32;
const MAX_JSON = 65536;
const MAX_LEAVES = 256;

function printableShare(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c >= 0x20 && c < 0x7f) || c === 0x09 || c === 0x0a || c === 0x0d) n++;
  }
  return s.length === 0 ? 0 : n / s.length;
}

/** Decodes base64 or base64url, padded or not; undefined when the length cannot be base64. */
export function decodeBase64Any(run: string): string | undefined {
  let s = run.replace(/=+$/, '').replace(/-/g, '+').replace(/_/g, '/');
  if (s.length % 4 === 1) s = s.slice(0, -1); // one dangling char carries no whole byte
  if (s.length < 2) return undefined;
  return Buffer.from(s, 'base64').toString('latin1');
}

/**
 * The base64 / base64url (padded or not) runs of a value that decode to mostly printable text
 * (>= 90% printable ASCII, >= 6 bytes): hashes, UUIDs, random ids and binary data (images)
 * decode to bytes that are not text and are dropped. A decoded text that is itself JSON (a JWT
 * payload, say) yields its string leaves instead, so JSON punctuation is not read as SQL.
 */
export function base64Texts(value: string): string[] {
  if (value.length < 12) return [];
  const out: string[] = [];
  BASE64_RUN.lastIndex = 0;
  for (let m = BASE64_RUN.exec(value); m && out.length < MAX_SEGMENTS; m = BASE64_RUN.exec(value)) {
    const decoded = decodeBase64Any(m[0]);
    if (decoded === undefined || decoded.length < MIN_DECODED || printableShare(decoded) < PRINTABLE_SHARE) continue;
    const leaves = jsonLeaves(decoded);
    if (leaves.length) out.push(...leaves);
    else out.push(decoded);
  }
  return out;
}

/** `t:sentinelBase64Text`: the decoded texts of base64Texts joined by newlines ('' if none). */
export function base64Text(value: string): string {
  return base64Texts(value).join('\n');
}

/**
 * String leaves (and keys) of a value that is a JSON object or array, e.g. a query argument or
 * header carrying JSON, or JSON inside a JSON string; [] for anything else.
 */
export function jsonLeaves(value: string): string[] {
  const t = value.trimStart();
  if (t.length > MAX_JSON || (t[0] !== '{' && t[0] !== '[')) return [];
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(t, 'latin1').toString('utf8'));
  } catch {
    return [];
  }
  const out: string[] = [];
  const walk = (v: unknown, depth: number): void => {
    if (out.length >= MAX_LEAVES || depth > 32) return;
    if (typeof v === 'string') {
      out.push(Buffer.from(v, 'utf8').toString('latin1'));
      // JSON-in-JSON: a string that is a document of its own.
      const inner = jsonLeaves(v);
      if (inner.length) out.push(...inner);
    } else if (Array.isArray(v)) for (const x of v) walk(x, depth + 1);
    else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (k.length > 2) out.push(k);
        walk(x, depth + 1);
      }
    }
  };
  walk(doc, 0);
  return out;
}

export type Decoder = (value: string) => string[];

export const DECODERS: Record<string, Decoder> = {
  base64: base64Texts,
  json: jsonLeaves,
};
