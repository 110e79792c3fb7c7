// Call deadlines without a timer per call. A setTimeout per agent call (armed, then cleared a
// fraction of a millisecond later when the reply comes) was a per-request cost on the agent hop.
// Calls of one agent almost all share one timeout, so their deadlines come in the order the
// calls were made: deadlines live in one list per timeout value (each list is therefore sorted),
// and one shared timer is armed for the earliest of the list heads. Settling a call unlinks its
// entry at once (O(1)), so nothing a settled call held stays reachable until its deadline.

/** One call's deadline: `cancel()` it when the call settles first. */
export interface Deadline {
  cancel(): void;
}

/** What a deadline fires: a callback, or an object (no closure per call: the client's PendingCall). */
export type DeadlineAction = (() => void) | { onDeadline(): void };

class Entry implements Deadline {
  prev: Entry | undefined = undefined;
  next: Entry | undefined = undefined;
  constructor(
    readonly at: number,
    public fire: DeadlineAction | undefined,
    private lane: Lane | undefined,
  ) {}

  cancel(): void {
    this.lane?.unlink(this);
    this.lane = undefined;
    this.fire = undefined;
  }
}

/** A doubly linked list of entries with non-decreasing deadlines. */
class Lane {
  head: Entry | undefined;
  private tail: Entry | undefined;

  push(e: Entry): void {
    e.prev = this.tail;
    if (this.tail) this.tail.next = e;
    else this.head = e;
    this.tail = e;
  }

  unlink(e: Entry): void {
    if (e.prev) e.prev.next = e.next;
    else this.head = e.next;
    if (e.next) e.next.prev = e.prev;
    else this.tail = e.prev;
    e.prev = e.next = undefined;
  }
}

export class DeadlineQueue {
  private readonly lanes = new Map<number, Lane>();
  private timer: NodeJS.Timeout | undefined;
  /** when the armed timer fires (monotonic ms), Infinity when none is armed */
  private armedAt = Infinity;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Calls `fire` (or its `onDeadline`) once, `ms` from now, unless the returned deadline is cancelled before. */
  add(ms: number, fire: DeadlineAction): Deadline {
    let lane = this.lanes.get(ms);
    if (!lane) this.lanes.set(ms, (lane = new Lane()));
    const e = new Entry(this.now() + ms, fire, lane);
    lane.push(e);
    if (e.at < this.armedAt) this.arm(e.at);
    return e;
  }

  private arm(at: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.armedAt = at;
    this.timer = setTimeout(this.sweep, Math.max(0, Math.ceil(at - this.now())));
    // Pending calls keep their socket (and so the process) alive; the sweep itself must not.
    this.timer.unref();
  }

  private readonly sweep = (): void => {
    this.timer = undefined;
    this.armedAt = Infinity;
    const now = this.now();
    const due: { at: number; fire: DeadlineAction }[] = [];
    let next = Infinity;
    for (const [ms, lane] of this.lanes) {
      let e = lane.head;
      while (e && e.at <= now) {
        due.push({ at: e.at, fire: e.fire! });
        e.cancel();
        e = lane.head;
      }
      if (e) next = Math.min(next, e.at);
      else this.lanes.delete(ms);
    }
    if (next !== Infinity) this.arm(next);
    // Fired once the queue is consistent again (a callback may add deadlines), earliest first
    // when a late sweep found several lanes due.
    if (due.length > 1) due.sort((a, b) => a.at - b.at);
    for (const d of due) {
      const f = d.fire;
      if (typeof f === 'function') f();
      else f.onDeadline();
    }
  };
}

/** The process-wide queue the agent clients share. */
export const callDeadlines = new DeadlineQueue();
