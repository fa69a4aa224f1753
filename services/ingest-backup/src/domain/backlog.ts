/**
 * Tells when a backlog has drained: the consumer was behind the stream and has caught up. The
 * buffer then holds the backlog's tail, and nothing more is coming soon to join it: it is
 * flushed at once instead of waiting out its age. In steady state (always caught up) this never
 * fires, so small steady flows still make files by age and size, not one per message.
 *
 * Two signals: `drained` on the batch that shows the catch-up, and `quietTail` once no batch has
 * come for a moment after it. The second matters because the catch-up is seen when the last
 * messages are *delivered*; batches already fetched are handled after it and would otherwise
 * wait out the age (seconds at the end of every backlog).
 */
/** Quiet time after a drained backlog before its tail is flushed. */
export const TAIL_QUIET_MS = 100;

export class BacklogWatch {
  private behind = false;
  /** A backlog drained and its tail has not been flushed by `quietTail` yet. */
  private tail = false;
  private lastBatchAt = Number.NEGATIVE_INFINITY;

  /** Feed the pending count after the last message of each delivered batch, and the time. */
  drained(pending: number, now: number): boolean {
    this.lastBatchAt = now;
    const was = this.behind;
    this.behind = pending > 0;
    const fired = was && !this.behind;
    if (this.behind) this.tail = false;
    else if (fired) this.tail = true;
    return fired;
  }

  /** True once after a drain, when `quietMs` have passed without a batch. */
  quietTail(now: number, quietMs: number): boolean {
    if (!this.tail || now - this.lastBatchAt < quietMs) return false;
    this.tail = false;
    return true;
  }
}
