/**
 * Tells when a backlog has just drained: the consumer was behind the stream and has caught up.
 * The buffer then holds the backlog's tail, and nothing more is coming soon to join it: it is
 * flushed at once instead of waiting out its age. In steady state (always caught up) this never
 * fires, so small steady flows still make files by age and size, not one per message.
 */
export class BacklogWatch {
  private behind = false;

  /** Feed the pending count after the last message of each delivered batch. */
  drained(pending: number): boolean {
    const was = this.behind;
    this.behind = pending > 0;
    return was && !this.behind;
  }
}
