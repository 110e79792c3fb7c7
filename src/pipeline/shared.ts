// Process-wide, reference-counted sharing of feature state across config generations (rate-limit
// buckets and backend connections, the HTTP cache's storage). A reload builds the new generation's
// filters (acquire: same settings -> same object) before it closes the old one's (release), so
// unchanged settings keep their state; the object is closed when the last user lets go.
import type { GenerationServices } from './types.ts';

interface Entry {
  value: unknown;
  refs: number;
  close: () => Promise<void> | void;
}

const entries = new Map<string, Entry>();

export interface Lease<T> {
  readonly value: T;
  /** Idempotent; closes the value when this was the last lease. */
  release(): Promise<void>;
}

export function acquire<T>(key: string, create: () => T, close: (value: T) => Promise<void> | void): Lease<T> {
  let entry = entries.get(key);
  if (!entry) {
    const value = create();
    entry = { value, refs: 0, close: () => close(value) };
    entries.set(key, entry);
  }
  entry.refs++;
  const held = entry;
  let released = false;
  return {
    value: held.value as T,
    async release() {
      if (released) return;
      released = true;
      held.refs--;
      if (held.refs === 0 && entries.get(key) === held) {
        entries.delete(key);
        await held.close();
      }
    },
  };
}

/** How many shared objects are alive (for tests and the reload report). */
export function sharedCount(prefix = ''): number {
  let n = 0;
  for (const k of entries.keys()) if (k.startsWith(prefix)) n++;
  return n;
}

/**
 * Which gateway a generation belongs to. Generations of one gateway share its process-wide
 * Metrics object, so that object identifies the gateway: reloads share state, while two
 * gateways in one process (tests) stay as independent as two processes would be.
 */
const gatewayIds = new WeakMap<object, number>();
let nextGatewayId = 0;
export function gatewayOf(services: Pick<GenerationServices, 'metrics'>): number {
  let id = gatewayIds.get(services.metrics);
  if (id === undefined) {
    id = ++nextGatewayId;
    gatewayIds.set(services.metrics, id);
  }
  return id;
}
