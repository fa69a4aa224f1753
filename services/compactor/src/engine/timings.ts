/**
 * Milliseconds an operation spends in each of its steps (plan, copy, hash, upload, commit, …),
 * reported in the result and the log so a slow run shows where its time went. `mark(step)`
 * charges the time since the previous mark to `step`; `add(step, ms)` records work that runs
 * beside the main sequence (hashing and uploading one output while the next is copied), so
 * the steps may add up to more than the operation's duration.
 */
export class StepTimings {
  private readonly totals = new Map<string, number>();
  private last = performance.now();

  mark(step: string): void {
    const now = performance.now();
    this.add(step, now - this.last);
    this.last = now;
  }

  add(step: string, ms: number): void {
    this.totals.set(step, (this.totals.get(step) ?? 0) + ms);
  }

  /** Times `fn` as `step` (beside the main sequence: the marks are not moved). */
  async time<T>(step: string, fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      this.add(step, performance.now() - t0);
    }
  }

  toJSON(): Record<string, number> {
    return Object.fromEntries([...this.totals].map(([k, v]) => [k, Math.round(v)]));
  }
}
