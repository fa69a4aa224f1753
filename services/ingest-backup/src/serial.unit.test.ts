import { describe, expect, it } from 'vitest';
import { SerialQueue } from './serial.js';

describe('SerialQueue', () => {
  it('runs tasks one at a time, and coalesces requests that wait behind a running task', async () => {
    const q = new SerialQueue();
    const log: string[] = [];
    let release!: () => void;
    const running = q.run(async () => {
      log.push('flush 1 start');
      await new Promise<void>((r) => {
        release = r;
      });
      log.push('flush 1 end');
    });
    let state = 'a';
    for (const s of ['b', 'c', 'd']) {
      state = s;
      q.request(async () => {
        log.push(`requested sees ${state}`);
      });
    }
    await Promise.resolve();
    expect(log).toEqual(['flush 1 start']);
    release();
    await running;
    await q.idle();
    // One request ran, after the running task, with the newest state.
    expect(log).toEqual(['flush 1 start', 'flush 1 end', 'requested sees d']);
    // Once it has started, a new request queues again.
    q.request(async () => {
      log.push('again');
    });
    await q.idle();
    expect(log.at(-1)).toBe('again');
  });
});
