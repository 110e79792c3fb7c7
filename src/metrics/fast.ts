// Hot-path metrics. prom-client's counters and histograms hash the label object on every call,
// even through `.labels(...)` children (its "child" re-validates and re-hashes each time); on the
// passthrough path that was ~3% of CPU for four updates per request. These keep one cell per label
// set, resolved once (`child(...)`), so an update is an array index and an add. They register in
// the same prom-client Registry (it only needs `name` and `get()`), so the exposition text, the
// metrics builtin and `registry.getSingleMetric(name).get()` are unchanged.
import type { Registry } from 'prom-client';

interface MetricValue {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

interface MetricSnapshot {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  values: MetricValue[];
  aggregator: 'sum';
}

abstract class LabeledMetric<Cell> {
  private readonly cells = new Map<string, { values: readonly string[]; cell: Cell }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    registry: Registry,
  ) {
    // The Registry's public type wants a prom-client Metric; it only ever reads `name`, `get()`
    // (and `type` for OpenMetrics counters), which this provides.
    registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  protected abstract newCell(): Cell;

  /** The cell for one label set (values in labelNames order); resolve once, update many times. */
  child(...values: string[]): Cell {
    if (values.length !== this.labelNames.length) {
      throw new Error(`${this.name}: expected ${this.labelNames.length} label values, got ${values.length}`);
    }
    const key = values.join('\u0000');
    let entry = this.cells.get(key);
    if (!entry) {
      entry = { values, cell: this.newCell() };
      this.cells.set(key, entry);
    }
    return entry.cell;
  }

  /** Convenience for cold paths: the cell for a label object. */
  protected cellFor(labels: Record<string, string>): Cell {
    return this.child(...this.labelNames.map((n) => labels[n] ?? ''));
  }

  protected labelsOf(values: readonly string[]): Record<string, string> {
    const out: Record<string, string> = {};
    this.labelNames.forEach((n, i) => (out[n] = values[i]!));
    return out;
  }

  protected entries(): Iterable<{ values: readonly string[]; cell: Cell }> {
    return this.cells.values();
  }

  reset(): void {
    this.cells.clear();
  }
}

export interface CounterCell {
  value: number;
}

export class FastCounter extends LabeledMetric<CounterCell> {
  readonly type = 'counter';

  protected newCell(): CounterCell {
    return { value: 0 };
  }

  inc(labels: Record<string, string>, by = 1): void {
    this.cellFor(labels).value += by;
  }

  async get(): Promise<MetricSnapshot> {
    const values: MetricValue[] = [];
    for (const { values: lv, cell } of this.entries()) values.push({ value: cell.value, labels: this.labelsOf(lv) });
    return { name: this.name, help: this.help, type: 'counter', values, aggregator: 'sum' };
  }
}

export class HistogramCell {
  /** per-bucket (non-cumulative) counts; the last slot is +Inf */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

export class FastHistogram extends LabeledMetric<HistogramCell> {
  readonly type = 'histogram';

  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    readonly buckets: readonly number[],
    registry: Registry,
  ) {
    super(name, help, labelNames, registry);
    for (let i = 1; i < buckets.length; i++) if (!(buckets[i]! > buckets[i - 1]!)) throw new Error(`${name}: buckets must increase`);
  }

  protected newCell(): HistogramCell {
    return new HistogramCell(this.buckets);
  }

  observe(labels: Record<string, string>, value: number): void {
    this.cellFor(labels).observe(value);
  }

  async get(): Promise<MetricSnapshot> {
    const values: MetricValue[] = [];
    for (const { values: lv, cell } of this.entries()) {
      const labels = this.labelsOf(lv);
      let cumulative = 0;
      for (let i = 0; i <= this.buckets.length; i++) {
        cumulative += cell.counts[i]!;
        values.push({ value: cumulative, labels: { le: i < this.buckets.length ? this.buckets[i]! : '+Inf', ...labels }, metricName: `${this.name}_bucket` });
      }
      values.push({ value: cell.sum, labels, metricName: `${this.name}_sum` });
      values.push({ value: cell.count, labels, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: 'histogram', values, aggregator: 'sum' };
  }
}
