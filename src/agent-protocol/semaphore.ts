// A FIFO counting semaphore whose waiters can give up (timeout, client gone). One per agent, so a
// slow agent queues only its own callers (Sentinel's queue isolation, §2.2).

export class Semaphore {
  private available: number;
  private readonly waiters: { grant: () => void; fail: (err: unknown) => void }[] = [];

  constructor(readonly capacity: number) {
    this.available = capacity;
  }

  get inUse(): number {
    return this.capacity - this.available;
  }

  get queued(): number {
    return this.waiters.length;
  }

  /** A permit now (its release function), or undefined when none is free or callers queue. */
  tryTake(): (() => void) | undefined {
    if (this.available > 0 && this.waiters.length === 0) {
      this.available -= 1;
      return this.releaser();
    }
    return undefined;
  }

  /**
   * A permit now without a release function (the client's hot path: no closure per call): true
   * when taken; the holder gives it back with `release()`, exactly once.
   */
  tryAcquire(): boolean {
    if (this.available > 0 && this.waiters.length === 0) {
      this.available -= 1;
      return true;
    }
    return false;
  }

  /** Gives back a permit taken with `tryAcquire` (to the first waiter, if any). */
  release(): void {
    const next = this.waiters.shift();
    if (next) next.grant();
    else this.available += 1;
  }

  /**
   * A permit request without an AbortSignal (cheaper on the hot path): `ready` resolves with the
   * release function; `cancel()` leaves the queue (a no-op once granted).
   */
  take(): { ready: Promise<() => void>; cancel(): void } {
    if (this.available > 0 && this.waiters.length === 0) {
      this.available -= 1;
      return { ready: Promise.resolve(this.releaser()), cancel: () => undefined };
    }
    let waiter!: { grant: () => void; fail: (err: unknown) => void };
    const ready = new Promise<() => void>((resolve, reject) => {
      waiter = { grant: () => resolve(this.releaser()), fail: reject };
      this.waiters.push(waiter);
    });
    return {
      ready,
      cancel: () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
      },
    };
  }

  /** Resolves with a release function; rejects with signal.reason if the signal aborts first. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.available > 0 && this.waiters.length === 0) {
      this.available -= 1;
      return Promise.resolve(this.releaser());
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve(this.releaser());
        },
        fail: reject,
      };
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.release();
    };
  }
}
