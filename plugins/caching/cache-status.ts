// Pure: RFC 9211 Cache-Status members and appending ours to what the upstream sent.

export interface StatusFacts {
  hit?: boolean;
  /** bypass | method | uri-miss | vary-miss | miss | request | stale */
  fwd?: string;
  fwdStatus?: number;
  /** remaining freshness in seconds (negative: stale) */
  ttl?: number;
  stored?: boolean;
  collapsed?: boolean;
  detail?: string;
}

export function cacheStatusMember(name: string, f: StatusFacts): string {
  let s = name;
  if (f.hit) s += '; hit';
  if (f.fwd) s += `; fwd=${f.fwd}`;
  if (f.fwdStatus !== undefined) s += `; fwd-status=${f.fwdStatus}`;
  if (f.ttl !== undefined) s += `; ttl=${Math.round(f.ttl)}`;
  if (f.stored) s += '; stored';
  if (f.collapsed) s += '; collapsed';
  if (f.detail) s += `; detail=${f.detail}`;
  return s;
}

/** Each cache appends its member: the origin-nearest come first (RFC 9211 §2). */
export function appendCacheStatus(existing: string | string[] | undefined, member: string): string {
  const prev = Array.isArray(existing) ? existing.join(', ') : existing;
  return prev ? `${prev}, ${member}` : member;
}
