// Audit lines to stdout, one write per event-loop turn. process.stdout on a pipe or a file is
// synchronous in Node on Linux: one write(2) per line. Every request that matches a logging rule
// gets a line (a benign request with a numeric Host matches CRS 920350), so under load that was
// one syscall per request in the agent; now the lines of one turn (one socket read's worth of
// requests) go out in one write, in the order they were made.
import { writeSync } from 'node:fs';

export interface LineSink {
  write(text: string): unknown;
}

export class BatchedLineWriter {
  private lines: string[] = [];
  private scheduled = false;

  /** `sink`: where the joined lines go; `exitFd`: written synchronously at process exit if lines are still queued (-1: none). */
  constructor(
    private readonly sink: LineSink,
    exitFd = -1,
  ) {
    if (exitFd >= 0) process.once('exit', () => this.flushSync(exitFd));
  }

  /** Queues one line (without its newline) for this turn's write. */
  write(line: string): void {
    this.lines.push(line);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.flush);
  }

  /** Writes what is queued now. */
  readonly flush = (): void => {
    this.scheduled = false;
    if (this.lines.length === 0) return;
    const text = this.take();
    this.sink.write(text);
  };

  get queued(): number {
    return this.lines.length;
  }

  private take(): string {
    const text = `${this.lines.join('\n')}\n`;
    this.lines = [];
    return text;
  }

  /** At exit no turn follows: what is still queued is written directly to the descriptor. */
  private flushSync(fd: number): void {
    if (this.lines.length === 0) return;
    try {
      writeSync(fd, this.take());
    } catch {
      // stdout closed: nothing left to write to
    }
  }
}

let stdoutWriter: BatchedLineWriter | undefined;

/** The process's one batched writer to stdout (shared by every WafService of the process). */
export function stdoutLines(): BatchedLineWriter {
  return (stdoutWriter ??= new BatchedLineWriter(process.stdout, 1));
}
