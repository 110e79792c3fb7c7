// A token bucket: at most `capacity` tokens, refilled `perSecond` a second, full at creation. The
// connection chunk budget (body-chunks.ts) and a WebSocket client's message rate
// (websocket/messages.ts) both draw on one.
export class TokenBucket {
  private tokens: number;
  private last = performance.now();

  constructor(
    private readonly capacity: number,
    private readonly perSecond: number,
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
}
