// Secrets never leave the process through a dump or a log line (issue 17 item 8): values of
// secret-named keys are replaced, and URLs lose the password in their userinfo. Paths to key or
// credential files stay (they say where the secret is, not what it is).

export const REDACTED = '<redacted>';

/** key names whose values are secrets; `*-file`, `*-env` and `*-path` name where a secret lives */
const SECRET_KEY = /(password|passwd|secret|token|api[-_]?key|hmac|auth[-_]?header|authorization|credentials|private[-_]?key|cookie[-_]?secret)/i;
const REFERENCE_KEY = /[-_](file|env|path|dir|header-name)$/i;

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key) && !REFERENCE_KEY.test(key);
}

/** `redis://user:pw@h:6379` -> `redis://user:<redacted>@h:6379`; a lone userinfo (a token) goes entirely. */
export function redactUrl(text: string): string {
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)([^/@\s"',]*)@/gi, (_m, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(':');
    return `${scheme}${colon >= 0 ? `${userinfo.slice(0, colon)}:${REDACTED}` : REDACTED}@`;
  });
}

/** A deep copy with secret-named keys and URL passwords redacted (Maps become plain objects). */
export function redactSecrets(value: unknown): unknown {
  if (typeof value === 'string') return redactUrl(value);
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (value instanceof Map) return redactSecrets(Object.fromEntries(value));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (typeof v === 'function') continue;
      out[k] = isSecretKey(k) && v !== null && typeof v !== 'boolean' ? REDACTED : redactSecrets(v);
    }
    return out;
  }
  return value;
}
