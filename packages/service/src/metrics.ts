import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/**
 * One registry per service. Names follow docs/observability.md: `parquetry_<thing>_<unit>_total`
 * for counters, low-cardinality labels only (dataset, stream, reason — never ids or symbols).
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly counters = new Map<string, Counter<string>>();
  private readonly gauges = new Map<string, Gauge<string>>();
  private readonly histograms = new Map<string, Histogram<string>>();

  constructor(service: string, opts: { defaults?: boolean } = {}) {
    this.registry.setDefaultLabels({ service });
    if (opts.defaults ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'parquetry_' });
  }

  counter(name: string, help: string, labelNames: string[] = []): Counter<string> {
    let c = this.counters.get(name);
    if (!c) {
      c = new Counter({ name, help, labelNames, registers: [this.registry] });
      this.counters.set(name, c);
    }
    return c;
  }

  /** `collect`, when given, runs on every scrape to set the value (a reading taken on demand). */
  gauge(
    name: string,
    help: string,
    labelNames: string[] = [],
    collect?: (gauge: Gauge<string>) => Promise<void> | void,
  ): Gauge<string> {
    let g = this.gauges.get(name);
    if (!g) {
      g = new Gauge({
        name,
        help,
        labelNames,
        registers: [this.registry],
        ...(collect
          ? {
              collect(this: Gauge<string>) {
                return collect(this);
              },
            }
          : {}),
      });
      this.gauges.set(name, g);
    }
    return g;
  }

  histogram(name: string, help: string, labelNames: string[] = [], buckets?: number[]): Histogram<string> {
    let h = this.histograms.get(name);
    if (!h) {
      h = new Histogram({
        name,
        help,
        labelNames,
        registers: [this.registry],
        ...(buckets ? { buckets } : {}),
      });
      this.histograms.set(name, h);
    }
    return h;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
