// Watching certificate files and folders so new handshakes pick up rotated certificates.
// Directories are watched rather than files: editors, cert-manager and Kubernetes secret
// volumes replace files by rename (Kubernetes swaps a `..data` symlink), which a watch on the
// old inode would miss. Events are debounced; the manager re-reads everything and keeps the
// old certificates if the new ones are broken, so a spurious trigger is harmless.
import { watch, type FSWatcher } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export interface WatchPlan {
  /** individual files (cert-file, key-file, ca-file) */
  files: string[];
  /** sni-certs folders with reload-mode watch */
  watchDirs: string[];
  /** sni-certs folders with reload-mode interval */
  pollDirs: { dir: string; intervalMs: number }[];
}

export class CertWatcher {
  private watchers: FSWatcher[] = [];
  private timers: NodeJS.Timeout[] = [];
  private debounce: NodeJS.Timeout | undefined;

  constructor(
    private readonly onChange: (reason: string) => void,
    private readonly opts: { debounceMs?: number; onError?: (err: Error) => void } = {},
  ) {}

  /** Replaces what is watched. */
  async set(plan: WatchPlan): Promise<void> {
    this.stop();
    const byDir = new Map<string, Set<string> | 'all'>();
    for (const f of plan.files) {
      const d = dirname(f);
      const cur = byDir.get(d);
      if (cur === 'all') continue;
      byDir.set(d, (cur ?? new Set<string>()).add(basename(f)));
    }
    for (const d of plan.watchDirs) byDir.set(d, 'all');
    for (const [dir, names] of byDir) {
      try {
        const w = watch(dir, { persistent: false }, (_event, name) => {
          const n = name?.toString();
          // `..data`-style names: a Kubernetes secret/configmap volume swapped its contents
          if (names === 'all' || !n || names.has(n) || n.startsWith('..')) this.trigger(`${join(dir, n ?? '')} changed`);
        });
        w.on('error', (err) => this.opts.onError?.(err));
        this.watchers.push(w);
      } catch (err) {
        this.opts.onError?.(err as Error);
      }
    }
    for (const { dir, intervalMs } of plan.pollDirs) {
      let last = await folderSignature(dir).catch(() => '');
      const t = setInterval(() => {
        void folderSignature(dir)
          .catch(() => '')
          .then((sig) => {
            if (sig !== last) {
              last = sig;
              this.trigger(`${dir} changed (interval check)`);
            }
          });
      }, intervalMs);
      t.unref();
      this.timers.push(t);
    }
  }

  private trigger(reason: string): void {
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => this.onChange(reason), this.opts.debounceMs ?? 200);
    this.debounce.unref();
  }

  private stop(): void {
    for (const w of this.watchers) w.close();
    for (const t of this.timers) clearInterval(t);
    this.watchers = [];
    this.timers = [];
  }

  close(): void {
    this.stop();
    clearTimeout(this.debounce);
  }
}

/** Names, sizes and mtimes of a folder's files: changes when anything is added, removed or rewritten. */
export async function folderSignature(dir: string): Promise<string> {
  const names = (await readdir(dir)).sort();
  const parts = await Promise.all(
    names.map(async (n) => {
      const s = await stat(join(dir, n)).catch(() => undefined);
      return s ? `${n}:${s.size}:${s.mtimeMs}:${s.ino}` : n;
    }),
  );
  return parts.join('|');
}
