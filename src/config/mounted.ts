// Reading several files of one mounted Kubernetes ConfigMap or Secret as ONE version. The kubelet
// writes each version into a timestamped folder, points `..data` at it, and every key is a symlink
// `name -> ..data/name`; a swap renames `..data` over. Two files read through their symlinks (a
// TLS cert-file and its key-file, a CA bundle beside them) can each come from another version.
// A snapshot resolves each folder's `..data` once and reads every such file from the folder it
// named then, which the kubelet never changes (session 23 audit; the config file and its includes
// have their own snapshot in kdl-loader.ts, session 21).
import { readlinkSync, realpathSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export class MountedSnapshot {
  /** folder -> its `..data` target at the first read (null: not a mounted volume) */
  private readonly folders = new Map<string, string | null>();

  /** Where to read `file` from: in the version its volume showed at this snapshot's first read of it. */
  path(file: string): string {
    const name = basename(file);
    try {
      if (readlinkSync(file) !== join('..data', name)) return file;
    } catch {
      return file; // not a symlink (or missing: the read reports it)
    }
    const dir = dirname(file);
    let data = this.folders.get(dir);
    if (data === undefined) {
      try {
        data = realpathSync(join(dir, '..data'));
      } catch {
        data = null;
      }
      this.folders.set(dir, data);
    }
    return data === null ? file : join(data, name);
  }
}
