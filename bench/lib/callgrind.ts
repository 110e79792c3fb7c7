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

/**
 * How often functions whose name contains `name` were called in a dump: the sum of the `calls=`
 * lines under every `cfn=` naming one. Names are compressed (`(id) name` the first time, `(id)`
 * after that), so ids are collected from every fn=/cfn= line first.
 */
export function parseCallgrindCallsTo(text: string, name: string): number {
  const ids = new Set<string>();
  for (const m of text.matchAll(/^c?fn=\((\d+)\) (.*)$/gm)) if (m[2]!.includes(name)) ids.add(m[1]!);
  let calls = 0;
  let target = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('cfn=')) target = ids.has(/^cfn=\((\d+)\)/.exec(line)?.[1] ?? '');
    else if (target && line.startsWith('calls=')) {
      calls += Number(/^calls=(\d+)/.exec(line)![1]);
      target = false;
    }
  }
  return calls;
}
