// `system { pid-file "/run/sentinel.pid" }`: the process that owns the listeners (the single
// process, or the cluster primary) writes its pid there and removes the file when it exits, if
// the file still names it. A relative path resolves against the config file's folder.
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

export function writePidFile(path: string, baseDir: string): string {
  const file = resolve(baseDir, path);
  writeFileSync(file, `${process.pid}\n`);
  process.once('exit', () => {
    try {
      if (readFileSync(file, 'utf8').trim() === String(process.pid)) unlinkSync(file);
    } catch {
      // already gone: nothing to clean
    }
  });
  return file;
}
