/**
 * Request latency per route for `GET /v1/stats`: the last `window` durations of each route in a
 * ring buffer (bounded memory, percentiles of recent traffic), and the total count. Routes are
 * route patterns (`GET /v1/exports/:id`), never raw URLs, so the map stays small.
 */
export class LatencyStats {
  private readonly routes = new Map<string, { samples: Float64Array; next: number; count: number }>();
  readonly since: Date;

  constructor(
    private readonly window = 2048,
    now: Date = new Date(),
  ) {
    this.since = now;
  }

  record(route: string, ms: number): void {
    let r = this.routes.get(route);
    if (!r) {
      r = { samples: new Float64Array(this.window), next: 0, count: 0 };
      this.routes.set(route, r);
    }
    r.samples[r.next] = ms;
    r.next = (r.next + 1) % this.window;
    r.count++;
  }

  snapshot(): Record<
    string,
    {
      count: number;
      p50_ms: number | null;
      p90_ms: number | null;
      p99_ms: number | null;
      max_ms: number | null;
    }
  > {
    const out: ReturnType<LatencyStats['snapshot']> = {};
    for (const [route, r] of [...this.routes.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const n = Math.min(r.count, this.window);
      const sorted = r.samples.slice(0, n).sort();
      const q = (p: number) => (n === 0 ? null : round(sorted[Math.min(n - 1, Math.ceil(p * n) - 1)]!));
      out[route] = {
        count: r.count,
        p50_ms: q(0.5),
        p90_ms: q(0.9),
        p99_ms: q(0.99),
        max_ms: n === 0 ? null : round(sorted[n - 1]!),
      };
    }
    return out;
  }
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;
