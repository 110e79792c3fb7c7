// The cancellation members of a RequestContext (cancelled, onCancel, offCancel) for hand-built
// test contexts, driven by the AbortSignal that is the fake's `signal`.
export interface Cancellation {
  readonly cancelled: boolean;
  onCancel(listener: () => void): void;
  offCancel(listener: () => void): void;
}

/** `ctx` with the cancellation members added (defined, not copied: `cancelled` stays live). */
export function withCancellation<T extends object>(ctx: T, signal: AbortSignal): T & Cancellation {
  return Object.defineProperties(ctx, {
    cancelled: { get: () => signal.aborted, enumerable: true },
    onCancel: { value: (l: () => void) => (signal.aborted ? l() : signal.addEventListener('abort', l, { once: true })), enumerable: true },
    offCancel: { value: (l: () => void) => signal.removeEventListener('abort', l), enumerable: true },
  }) as T & Cancellation;
}
