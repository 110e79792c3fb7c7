// auto-reload's file watching. It watches DIRECTORIES, never the files: Kubernetes updates a
// mounted ConfigMap or Secret by writing a new timestamped folder and renaming the `..data`
// symlink over the old one (config.kdl -> ..data/config.kdl), and fs.watch on the file keeps
// following the old inode, so the swap would go unseen. Watched: the folder of the config file
// and of every TLS file the listeners read, plus the folder of each symlink's current target
// (an edited target outside the mount). Events for those names or `..data` are debounced into
// one onChange; the watch set is rebuilt after each one (targets move with every swap). The folders
// an include glob looked in are watched for names its pattern matches (session 23 audit: a new
// `conf.d/20-admin.kdl` waited for another event).
import { realpathSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, isAbsolute, resolve } from 'node:path';
import type { CompiledConfig } from './compile.ts';
import type { IncludeLookup } from './kdl-loader.ts';

/** What auto-reload watches: the files a reload re-reads, and where the include globs looked. */
export interface WatchSources {
  files: readonly string[];
  globs: readonly IncludeLookup[];
}

export interface ConfigWatcher {
  /** watch the current sources again (after a reload: an include or TLS file added or removed) */
  refresh(): void;
  close(): void;
}

/**
 * The files a reload re-reads: the config file, every file it includes (session 22: before, an edit
 * to an included file alone was never seen) and every `*-file` of the listeners' tls blocks.
 */
export function reloadSources(config: CompiledConfig): WatchSources {
  const files = config.files.length > 0 ? [...config.files] : config.file ? [config.file] : [];
  const collect = (v: unknown, key: string): void => {
    if (typeof v === 'string' && key.endsWith('-file')) files.push(isAbsolute(v) ? v : resolve(config.baseDir, v));
    else if (Array.isArray(v)) for (const item of v) collect(item, key);
    else if (v && typeof v === 'object') for (const [k, item] of Object.entries(v)) collect(item, k);
  };
  for (const l of config.listeners) if (l.tls) collect(l.tls, 'tls');
  return { files: [...new Set(files)], globs: config.includeLookups };
}

/** folder -> names in it whose change means "reload" (`..data` is the Kubernetes swap). */
export function watchTargets(files: readonly string[], realpath: (p: string) => string = realpathSync): Map<string, Set<string>> {
  const targets = new Map<string, Set<string>>();
  const add = (path: string): void => {
    const dir = dirname(path);
    const names = targets.get(dir) ?? new Set(['..data']);
    names.add(basename(path));
    targets.set(dir, names);
  };
  for (const f of files) {
    add(f);
    try {
      const real = realpath(f);
      if (real !== f) add(real);
    } catch {
      // missing right now (mid-swap): its folder is watched, the next event rebuilds the set
    }
  }
  return targets;
}

/** folder -> the name patterns of the include globs that looked there */
function globTargets(globs: readonly IncludeLookup[]): Map<string, RegExp[]> {
  const out = new Map<string, RegExp[]>();
  for (const g of globs) {
    const list = out.get(g.dir) ?? [];
    list.push(new RegExp(g.name));
    out.set(g.dir, list);
  }
  return out;
}

/** `sources` is asked again at every re-arm: a reload may add or drop an include or a TLS file. */
export function watchConfigSources(sources: () => WatchSources, onChange: () => void, debounceMs = 200): ConfigWatcher {
  let watchers: FSWatcher[] = [];
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const arm = (): void => {
    for (const w of watchers) w.close();
    watchers = [];
    const { files, globs } = sources();
    const named = watchTargets(files);
    const patterns = globTargets(globs);
    for (const dir of new Set([...named.keys(), ...patterns.keys()])) {
      const names = named.get(dir);
      const res = patterns.get(dir) ?? [];
      try {
        const w = watch(dir, (_event, name) => {
          const n = name?.toString();
          if (n !== undefined && !names?.has(n) && !res.some((re) => re.test(n))) return;
          clearTimeout(timer);
          timer = setTimeout(fire, debounceMs);
        });
        w.on('error', () => undefined); // a target folder removed by a swap; rebuilt on the next fire
        w.unref();
        watchers.push(w);
      } catch {
        // folder missing: nothing to watch there until the next rebuild
      }
    }
  };
  const fire = (): void => {
    if (closed) return;
    arm();
    onChange();
  };
  arm();
  return {
    refresh() {
      if (!closed) arm();
    },
    close() {
      closed = true;
      clearTimeout(timer);
      for (const w of watchers) w.close();
    },
  };
}
