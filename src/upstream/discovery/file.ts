// discovery "file" { path "/etc/sentinel/backends.txt"; watch-interval 5 }: one target per line,
// re-read when the file's mtime (or size) changes. Line format (ours; Sentinel documents only
// "host:port"): `host:port`, optionally followed by a weight (`10.0.0.1:8080 3` or
// `10.0.0.1:8080 weight=3`); `#` starts a comment; blank lines are ignored. A malformed line
// fails the whole read (the last good set stays), so a half-edited file never shrinks the pool;
// write the file atomically (write + rename) all the same.
import { readFile, stat } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import { parseHostPort, type TargetSpec } from '../address.ts';
import type { DiscoverySource } from './types.ts';

/** Pure parser: file text -> targets; throws `line N: ...` on the first malformed line. */
export function parseTargetsFile(text: string): TargetSpec[] {
  const out: TargetSpec[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const hash = raw.indexOf('#');
    const line = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
    if (line === '') return;
    const parts = line.split(/\s+/);
    if (parts.length > 2) throw new Error(`line ${i + 1}: expected "host:port [weight]", got "${line}"`);
    const address = parts[0]!;
    let weight = 1;
    if (parts[1] !== undefined) {
      const w = /^(?:weight=)?(\d+)$/.exec(parts[1]);
      if (!w) throw new Error(`line ${i + 1}: invalid weight "${parts[1]}" (expected an integer >= 0)`);
      weight = Number(w[1]);
    }
    try {
      out.push({ address, ...parseHostPort(address), weight });
    } catch (e) {
      throw new Error(`line ${i + 1}: ${(e as Error).message}`, { cause: e });
    }
  });
  return out;
}

export function fileSource(path: string, watchMs: number, baseDir: string): DiscoverySource {
  const file = resolvePath(baseDir, path);
  let seen: string | undefined;
  let last: TargetSpec[] = [];
  return {
    kind: 'file',
    intervalMs: watchMs,
    async resolve() {
      const s = await stat(file);
      const version = `${s.mtimeMs}:${s.size}`;
      if (version === seen) return last; // unchanged file: nothing re-read
      const specs = parseTargetsFile(await readFile(file, 'utf8'));
      seen = version;
      last = specs;
      return specs;
    },
  };
}
