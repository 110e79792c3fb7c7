// A token bucket: at most `capacity` tokens, refilled `perSecond` a second, full at creation. The
// connection chunk budget (body-chunks.ts), a WebSocket client's message rate
// (websocket/messages.ts) and the per-client budgets behind both (client-budgets.ts) draw on one.
export class TokenBucket {
  private tokens: number;
  private last = performance.now();

  constructor(
    readonly capacity: number,
    readonly perSecond: number,
  ) {
    this.tokens = capacity;
  }

  /** Takes `cost` tokens (a negative cost gives back, without reading the clock); false once the bucket is below empty. */
  take(cost = 1): boolean {
    if (cost <= 0) {
      this.tokens = Math.min(this.capacity, this.tokens - cost);
      return true;
    }
    const now = performance.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) * this.perSecond) / 1000) - cost;
    this.last = now;
    return this.tokens >= 0;
  }

  /** Whether the bucket has refilled to its capacity: it holds nothing a new bucket would not. */
  full(now = performance.now()): boolean {
    return this.tokens + ((now - this.last) * this.perSecond) / 1000 >= this.capacity;
  }
}
