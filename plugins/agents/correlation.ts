// Correlation ids for agent calls. Replies are routed by correlation id, so two requests in
// flight must never share one, even when clients send the same X-Request-Id (otherwise one
// request could receive another's decision). The trace id is used as-is when it is free and
// suffixed when it is taken; an id stays reserved until every call that used it has settled.
const reserved = new Map<string, number>();
let sequence = 0;

export interface CorrelationHandle {
  readonly id: string;
  /** one more holder (a call that may still receive a reply) */
  hold(): void;
  release(): void;
}

export function reserveCorrelationId(traceId: string): CorrelationHandle {
  let id = traceId;
  while (reserved.has(id)) id = `${traceId}~${(++sequence).toString(36)}`;
  reserved.set(id, 1);
  return new Reservation(id);
}

/** A class, not an object of two closures: one allocation per request. */
class Reservation implements CorrelationHandle {
  constructor(readonly id: string) {}

  hold(): void {
    reserved.set(this.id, (reserved.get(this.id) ?? 0) + 1);
  }

  release(): void {
    const n = (reserved.get(this.id) ?? 1) - 1;
    if (n <= 0) reserved.delete(this.id);
    else reserved.set(this.id, n);
  }
}

/** For leak checks in tests. */
export function reservedCorrelationIds(): number {
  return reserved.size;
}
