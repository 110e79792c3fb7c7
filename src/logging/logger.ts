// Logs: pino for the error/application log (stdout or error-log file), and a separate access
// log and audit log stream, each JSON lines (access log may use `combined`).
import pino, { type Logger, type DestinationStream } from 'pino';
import type { RawObservability } from '../config/schema.ts';

export function createLogger(obs: RawObservability | undefined, override?: string): Logger {
  const logging = obs?.logging;
  const level = override ?? logging?.level ?? 'info';
  const errorLog = logging?.['error-log'];
  const dest: DestinationStream =
    errorLog?.enabled !== false && errorLog?.file ? pino.destination({ dest: errorLog.file, mkdir: true, sync: false }) : pino.destination({ dest: 1, sync: false });
  return pino({ level, base: { service: 'sentinel' }, timestamp: pino.stdTimeFunctions.isoTime }, dest);
}

export type LineSink = {
  write(line: string): void;
  flush?(): void;
  /** resolves once every line written so far is on disk/stdout, or after `FLUSH_WAIT_MS` (a stuck sink must not hold a shutdown) */
  flushed?(): Promise<void>;
  end?(): void;
};

/** How long a shutdown waits for a log sink's buffered lines to be written. */
export const FLUSH_WAIT_MS = 1000;

/** Waits for `flush(cb)` (SonicBoom, pino) to call back, at most FLUSH_WAIT_MS; errors end the wait too. */
export function waitFlushed(flush: (cb: (err?: Error | null) => void) => void): Promise<void> {
  return new Promise<void>((resolve) => {
    // not unref'd: the process stays up until the lines are written or the wait is over
    const timer = setTimeout(resolve, FLUSH_WAIT_MS);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    try {
      flush(done);
    } catch {
      done(); // destroyed: nothing more can be written
    }
  });
}

/** A write buffer that never grows past `maxBytes`: lines that do not fit are dropped and counted. */
export interface SinkBound {
  maxBytes: number;
  onDrop(lines: number): void;
}

/**
 * A JSON-lines sink for the access or audit log; undefined when that log is disabled. With a
 * `bound`, a slow or stuck file/stdout drops lines (SonicBoom's maxLength) instead of holding
 * them in memory without limit, so a request never waits for the disk.
 */
export function createSink(cfg: { enabled?: boolean; file?: string } | undefined, enabledByDefault: boolean, bound?: SinkBound): LineSink | undefined {
  const enabled = cfg ? cfg.enabled !== false : enabledByDefault;
  if (!enabled) return undefined;
  const dest = pino.destination({ dest: cfg?.file ?? 1, mkdir: true, sync: false, minLength: 4096, ...(bound ? { maxLength: bound.maxBytes } : {}) });
  if (bound) dest.on('drop', () => bound.onDrop(1));
  return {
    write: (line) => dest.write(line),
    flush: () => dest.flush(),
    // flush() alone only starts an asynchronous write: a process that exits right after it loses the lines
    flushed: () => waitFlushed((cb) => dest.flush(cb)),
    end: () => dest.end(),
  };
}
