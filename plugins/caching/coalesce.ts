// Request coalescing: the first miss for a key fetches (the leader); later misses for the same
// key wait for it, bounded by lock-timeout, then look again (hit) or fall through to the origin.

export type Claim = { leader: true; release(): void } | { leader: false; wait(timeoutMs: number): Promise<boolean> };

export class Locks {
  private readonly held = new Map<string, { done: Promise<void>; resolve: () => void }>();

  claim(key: string): Claim {
    const cur = this.held.get(key);
    if (cur) {
      return {
        leader: false,
        // true when the leader finished in time, false on timeout
        wait: (timeoutMs) =>
          new Promise<boolean>((resolve) => {
            const timer = setTimeout(() => resolve(false), timeoutMs);
            void cur.done.then(() => {
              clearTimeout(timer);
              resolve(true);
            });
          }),
      };
    }
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    const lock = { done, resolve };
    this.held.set(key, lock);
    let released = false;
    return {
      leader: true,
      release: () => {
        if (released) return;
        released = true;
        if (this.held.get(key) === lock) this.held.delete(key);
        resolve();
      },
    };
  }

  get size(): number {
    return this.held.size;
  }
}
