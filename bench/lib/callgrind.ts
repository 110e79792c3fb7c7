// Reading callgrind's dumps (bench/ab.ts --mode instr). Pure: text in, numbers out.

/**
 * The `summary:` line of a callgrind dump: the total of the first event (Ir, instructions
 * executed) since the counters were last zeroed. Throws when the dump has none.
 */
export function parseCallgrindSummary(text: string): number {
  const events = /^events:\s*(.+)$/m.exec(text);
  if (events && events[1]!.trim().split(/\s+/)[0] !== 'Ir') throw new Error(`callgrind dump: first event is ${events[1]!.trim()}, expected Ir`);
  const m = /^summary:\s*(\d+)/m.exec(text);
  if (!m) throw new Error('callgrind dump has no summary line');
  return Number(m[1]);
}
