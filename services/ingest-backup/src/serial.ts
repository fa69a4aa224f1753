/** Runs tasks one at a time, in order: flushes from the handler and the timer never overlap. */
export class SerialQueue {
  private tail: Promise<void> = Promise.resolve();
  private requested = false;

  run(task: () => Promise<void>): Promise<void> {
    const next = this.tail.then(task, task);
    this.tail = next.catch(() => {});
    return next;
  }

  /**
   * Queues `task` unless an earlier request is still waiting for its turn: that one will run
   * against the same, newer state. Errors are the task's own business (logged there).
   */
  request(task: () => Promise<void>): void {
    if (this.requested) return;
    this.requested = true;
    this.run(() => {
      this.requested = false;
      return task();
    }).catch(() => {});
  }

  /** Resolves when everything queued so far has finished. */
  idle(): Promise<void> {
    return this.tail;
  }
}
