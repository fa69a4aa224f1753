import type { JetStreamClient, JsMsg } from '@nats-io/jetstream';
import { silentLogger } from '@parquetry/service';
import { describe, expect, it } from 'vitest';
import { TickSource, type TickSourceOptions } from './tick-source.js';

/**
 * A stand-in for the JetStream client's ordered consumers: each `consumers.get` is one consumer
 * that delivers the sequences `plan` gives it (from its start) and then goes silent, without a
 * heartbeat or an error — what a consumer on a dead cluster node looks like to nats.js 3.4.
 */
function fakeJs(plan: { fail?: number; deliver: (start: number, index: number) => number[] }) {
  const opened: number[] = [];
  const deleted: string[] = [];
  let failures = plan.fail ?? 0;
  const js = {
    consumers: {
      async get(_stream: string, opts: { opt_start_seq: number }) {
        opened.push(opts.opt_start_seq);
        if (failures-- > 0) throw Object.assign(new Error('timeout'), { name: 'TimeoutError' });
        const index = opened.length - 1;
        return {
          async consume({ callback }: { callback: (m: JsMsg) => void }) {
            setTimeout(() => {
              for (const seq of plan.deliver(opts.opt_start_seq, index)) callback({ seq } as JsMsg);
            }, 5);
            return {
              close: async () => {},
              closed: () => new Promise<void>(() => {}),
              status: () => (async function* () {})(),
            };
          },
          async info() {
            return { name: `c${index}` };
          },
        };
      },
    },
    jetstreamManager: async () => ({
      consumers: {
        delete: async (_stream: string, name: string) => {
          deleted.push(name);
          return true;
        },
      },
    }),
  };
  return { js: js as unknown as JetStreamClient, opened, deleted };
}

const until = async (what: () => boolean, ms = 5000) => {
  const deadline = Date.now() + ms;
  while (!what()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
};

/** A source over `fake` that records what it hands on and every error it reports. */
function sourceOver(
  fake: ReturnType<typeof fakeJs>,
  opts: Partial<TickSourceOptions> & { startSeq: number },
) {
  const got: number[] = [];
  const errors: unknown[] = [];
  const source = new TickSource({
    js: fake.js,
    batch: 100,
    onMessage: (m) => got.push(m.seq),
    onError: (err) => errors.push(err),
    logger: silentLogger(),
    ...opts,
  });
  return { source, got, errors };
}

describe('TickSource watchdog', () => {
  it('re-opens a consumer that went silent right after the last message, with no gap and no repeat', async () => {
    // Each consumer delivers three messages, then nothing; the third one all the rest.
    const fake = fakeJs({
      deliver: (start, i) => Array.from({ length: i < 2 ? 3 : 4 }, (_, k) => start + k),
    });
    const { source, got, errors } = sourceOver(fake, { startSeq: 1, expiresMs: 100, watchdogMs: 150 });
    await source.start();
    await until(() => got.length >= 10);
    await source.stop();
    expect(got).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(fake.opened.slice(0, 3)).toEqual([1, 4, 7]);
    expect(fake.deleted.slice(0, 2)).toEqual(['c0', 'c1']);
    expect(errors).toEqual([]);
  });

  it('retries an open that times out instead of failing', async () => {
    const fake = fakeJs({ fail: 2, deliver: (start) => [start, start + 1] });
    const { source, got, errors } = sourceOver(fake, { startSeq: 41, watchdogMs: 60_000 });
    await source.start();
    await until(() => got.length >= 2);
    await source.stop();
    expect(fake.opened).toEqual([41, 41, 41]);
    expect(got).toEqual([41, 42]);
    expect(errors).toEqual([]);
  });

  it('gives up with onError once opening has failed for openRetryMs', async () => {
    const fake = fakeJs({ fail: 1000, deliver: () => [] });
    const { source } = sourceOver(fake, { startSeq: 1, openRetryMs: 300 });
    await expect(source.start()).rejects.toThrow(/timeout/);
    await source.stop();
  });
});
