/**
 * Buffers work per output file key (partition + category, or partition alone) and decides when
 * to flush: a group that is old enough or big enough, and — whatever the number of open
 * groups — the largest groups first whenever the total crosses the memory budget. Pure: the
 * clock is passed in, nothing here does I/O.
 */
export interface FlushPolicy {
  /** Flush a group once its oldest item is this old. */
  maxAgeMs: number;
  /** Flush a group once it holds this many estimated bytes. */
  maxGroupBytes: number;
  /** Never hold more than this many estimated bytes across all groups. */
  maxTotalBytes: number;
  /**
   * Never hold more than this many items across all groups. Items are unacknowledged messages:
   * small ones (single ticks) fill the consumer's ack-pending window long before any byte
   * budget, and waiting for their age then caps the rate at window / age.
   */
  maxTotalItems?: number;
}

export interface Group<T> {
  key: string;
  items: T[];
  bytes: number;
  firstAt: number;
}

export class GroupBuffer<T> {
  private readonly groups = new Map<string, Group<T>>();
  private total = 0;
  private count = 0;

  constructor(private readonly policy: FlushPolicy) {}

  add(key: string, item: T, bytes: number, now: number): void {
    let g = this.groups.get(key);
    if (!g) {
      g = { key, items: [], bytes: 0, firstAt: now };
      this.groups.set(key, g);
    }
    g.items.push(item);
    g.bytes += bytes;
    this.total += bytes;
    this.count += 1;
  }

  get totalBytes(): number {
    return this.total;
  }

  get totalItems(): number {
    return this.count;
  }

  get size(): number {
    return this.groups.size;
  }

  /** Remove and return the groups due now: old, big, or needed to get back under the budget. */
  takeDue(now: number): Group<T>[] {
    const due: Group<T>[] = [];
    for (const g of this.groups.values()) {
      if (now - g.firstAt >= this.policy.maxAgeMs || g.bytes >= this.policy.maxGroupBytes) due.push(g);
    }
    for (const g of due) this.remove(g.key);
    if (this.overBudget(1)) {
      const bySize = [...this.groups.values()].sort((a, b) => b.bytes - a.bytes);
      for (const g of bySize) {
        if (!this.overBudget(2)) break;
        this.remove(g.key);
        due.push(g);
      }
    }
    return due;
  }

  /** Whether takeDue would return anything now (for sinks that flush all groups together). */
  hasDue(now: number): boolean {
    if (this.overBudget(1)) return true;
    for (const g of this.groups.values()) {
      if (now - g.firstAt >= this.policy.maxAgeMs || g.bytes >= this.policy.maxGroupBytes) return true;
    }
    return false;
  }

  /** Everything, for a graceful stop. */
  takeAll(): Group<T>[] {
    const all = [...this.groups.values()];
    this.groups.clear();
    this.total = 0;
    this.count = 0;
    return all;
  }

  /** Milliseconds until the oldest group is due by age (for the flush timer). */
  msUntilDue(now: number): number | undefined {
    let min: number | undefined;
    for (const g of this.groups.values()) {
      const left = Math.max(0, g.firstAt + this.policy.maxAgeMs - now);
      min = min === undefined ? left : Math.min(min, left);
    }
    return min;
  }

  /** Over the budgets divided by `divisor` (1: must flush; 2: flushed down to half). */
  private overBudget(divisor: number): boolean {
    const { maxTotalBytes, maxTotalItems } = this.policy;
    return (
      this.total > maxTotalBytes / divisor ||
      (maxTotalItems !== undefined && this.count > maxTotalItems / divisor)
    );
  }

  private remove(key: string): void {
    const g = this.groups.get(key);
    if (!g) return;
    this.groups.delete(key);
    this.total -= g.bytes;
    this.count -= g.items.length;
  }
}
