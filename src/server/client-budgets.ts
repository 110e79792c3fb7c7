// Per-client budgets behind the per-connection ones (docs/security.md, "Session 27 audit"). The
// connection chunk budget (body-chunks.ts) and the WebSocket message rate (websocket/messages.ts)
// are full when a connection or session opens, so a client that reconnected got a full budget
// each time (~12 ms of gateway CPU per h2 session in one-byte DATA frames, 1,000 agent calls per
// WebSocket session), and one with 100 connections open had 100 budgets. Each is now also drawn
// from a bucket of the client address, `limits { max-connection-budgets-per-client }` connections'
// worth (default 8: a browser's six connections fit), which reconnecting does not refill.
import { clientPrefixKey } from './client-prefix.ts';
import { TokenBucket } from './token-bucket.ts';

/** `limits { max-connection-budgets-per-client }` when the config does not say. */
export const DEFAULT_CONNECTION_BUDGETS_PER_CLIENT = 8;
/** Client buckets kept per process: past it, a refilled one (or else the oldest) makes room. */
export const MAX_BUDGET_CLIENTS = 16_384;
/** How many of the oldest buckets an insertion looks at for refilled ones. */
const EVICT_SCAN = 32;

/**
 * The client buckets of one process, shared by every generation (a reload keeps them). Bounded:
 * a bucket that has refilled holds nothing a new one would not, so those go first; only when the
 * oldest EVICT_SCAN are all in use is the oldest dropped (an attacker spread over that many
 * addresses gets a fresh bucket per address anyway).
 */
export class ClientBudgets {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(private readonly maxClients = MAX_BUDGET_CLIENTS) {}

  get size(): number {
    return this.buckets.size;
  }

  /** The bucket of `key` with this shape; made full if there is none (or the config changed its shape). */
  bucket(key: string, capacity: number, perSecond: number): TokenBucket {
    const b = this.buckets.get(key);
    if (b && b.capacity === capacity && b.perSecond === perSecond) return b;
    if (b) this.buckets.delete(key);
    else if (this.buckets.size >= this.maxClients) this.evict();
    const made = new TokenBucket(capacity, perSecond);
    this.buckets.set(key, made);
    return made;
  }

  private evict(): void {
    const now = performance.now();
    let seen = 0;
    for (const [key, b] of this.buckets) {
      if (b.full(now)) this.buckets.delete(key);
      if (++seen >= EVICT_SCAN) break;
    }
    if (this.buckets.size >= this.maxClients) this.buckets.delete(this.buckets.keys().next().value!);
  }
}

/** What a generation asks for a new connection's or session's client bucket (its config's multiple and exemptions). */
export class ClientBudgetGate {
  constructor(
    private readonly budgets: ClientBudgets,
    /** connections' worth per client; 0: no per-client budget */
    readonly connections: number,
    /** client addresses that are themselves trusted proxies: their clients share the address */
    private readonly exempt: (ip: string) => boolean,
  ) {}

  /** The client bucket of a connection's small body pieces (the TCP peer `peer`), shaped `connections` x the connection's. */
  chunks(peer: string, capacity: number, perSecond: number): TokenBucket | undefined {
    if (this.connections === 0 || peer === '' || this.exempt(peer)) return undefined;
    // an IPv6 client holds a /64: one client, as rate limits count it (client-prefix.ts)
    return this.budgets.bucket(`b ${clientPrefixKey(peer)}`, this.connections * capacity, this.connections * perSecond);
  }

  /** The client bucket of `routeId`'s WebSocket messages from `clientIp` (the resolved client), `connections` x a session's. */
  messages(routeId: string, clientIp: string, burst: number, perSecond: number): TokenBucket | undefined {
    if (this.connections === 0 || clientIp === '' || this.exempt(clientIp)) return undefined;
    return this.budgets.bucket(`w ${routeId} ${clientPrefixKey(clientIp)}`, this.connections * burst, this.connections * perSecond);
  }
}
