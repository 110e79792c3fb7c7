// The request key hash-based balancers use: `hash-key "client-ip" | "path" | "header:Name" |
// "cookie:name"`. A missing header/cookie falls back to the client IP so the key is never empty.
import type { PickContext } from '../../src/upstream/types.ts';

export type KeyFn = (ctx: PickContext) => string;

export function parseHashKey(spec: string | undefined): KeyFn | string {
  const s = (spec ?? 'client-ip').trim();
  const lower = s.toLowerCase();
  if (lower === 'client-ip' || lower === 'client_ip' || lower === 'ip') return (ctx) => ctx.clientIp;
  if (lower === 'path' || lower === 'uri') return (ctx) => ctx.path;
  const colon = s.indexOf(':');
  const kind = colon > 0 ? lower.slice(0, colon) : '';
  const name = colon > 0 ? s.slice(colon + 1).trim() : '';
  if (kind === 'header' && name) {
    const header = name.toLowerCase();
    return (ctx) => ctx.header(header) ?? ctx.clientIp;
  }
  if (kind === 'cookie' && name) return (ctx) => ctx.cookie(name) ?? ctx.clientIp;
  return `invalid hash-key "${s}": expected "client-ip", "path", "header:<name>" or "cookie:<name>"`;
}
