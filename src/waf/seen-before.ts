// Which values were seen in an earlier transaction, approximately and in fixed memory. The
// cross-request caches (the miss memo, the regex prefilter's answers) only pay for values that
// repeat (header values, cookies, common arguments); a value seen once (a counter, an order id, a
// timestamp) would be kept anyway, survive the young-generation GCs and be copied into the old
// generation, where most of the engine's GC time went. They admit a value the second time it
// shows up in a different transaction.

/** Transactions set this while they run rules (the engine is synchronous inside a phase). */
export const currentTransaction = { serial: 0 };

const SLOTS = 1 << 16;
/** The last values checked, with their answers (see check). */
const RECENT = 4;

export class SeenBefore {
  private readonly hashes = new Int32Array(SLOTS);
  private readonly serials = new Float64Array(SLOTS);
  private readonly recent: (string | undefined)[] = new Array<string | undefined>(RECENT).fill(undefined);
  private readonly recentAnswers: boolean[] = new Array<boolean>(RECENT).fill(false);
  private recentSerial = -1;
  private recentAt = 0;

  /** True when `s` was (probably: a hash table, collisions say yes) offered during another
   * transaction before; remembers it for this one. */
  check(s: string): boolean {
    // A value checked again in the same transaction has the same answer (a found slot is not
    // rewritten): the memo and the prefilter share one table and ask about the same values (a
    // benign GET: 12 checks of 8 values, its URI and request line 55-68 characters, ~27
    // instructions a character to hash). A comparison fails at the length or the first
    // characters that differ, or is a pointer's when the string is the same.
    const serial = currentTransaction.serial;
    const recent = this.recent;
    if (serial !== this.recentSerial) {
      this.recentSerial = serial;
      for (let k = 0; k < RECENT; k++) recent[k] = undefined;
    } else {
      for (let k = 0; k < RECENT; k++) if (recent[k] === s) return this.recentAnswers[k]!;
    }
    const answer = this.hashed(s, serial);
    const at = this.recentAt;
    recent[at] = s;
    this.recentAnswers[at] = answer;
    this.recentAt = (at + 1) & (RECENT - 1);
    return answer;
  }

  private hashed(s: string, serial: number): boolean {
    // Property loads on `s` key their inline caches on the string's map (sequential, cons, sliced,
    // thin, external; one or two byte). In the gateway (in-process) the engine meets the gateway's
    // strings of every kind: `s.charCodeAt` and `s.length` went megamorphic, a stub-cache lookup
    // per character, and the in-process gateway kept recompiling (callgrind, bench GET: TurboFan
    // 1-2.3 M instructions a request after the warm-up, 36-69 k without these loads). So: the
    // length read once, the builtin called on `s` instead of looked up on it.
    const n = s.length;
    let h = 0x811c9dc5 ^ n;
    for (let i = 0; i < n; i++) h = Math.imul(h ^ String.prototype.charCodeAt.call(s, i), 0x01000193);
    h |= 1; // 0 marks an empty slot
    const slot = (h ^ (h >>> 16)) & (SLOTS - 1);
    if (this.hashes[slot] === h) return this.serials[slot] !== serial;
    this.hashes[slot] = h;
    this.serials[slot] = serial;
    return false;
  }
}

/** The table the miss memo and the regex prefilter share (both ask "seen in another transaction?"
 * about the same values). */
export const seenBefore = new SeenBefore();
