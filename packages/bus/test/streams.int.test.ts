import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureConsumer } from '../src/consumers.js';
import { publishFast } from '../src/fast-publish.js';
import { publishBatch, publishJson } from '../src/publish.js';
import { ensureStreams, STREAM_DEFS } from '../src/streams.js';
import { type NatsFixture, natsFixture, testStream } from './helpers.js';

let f: NatsFixture;
beforeAll(async () => {
  f = await natsFixture();
});
afterAll(() => f?.close());

describe('ensureStreams', () => {
  it('creates the streams of the design, is idempotent, and applies a changed setting', async () => {
    const first = await ensureStreams(f.bus.jsm);
    const created = first.filter((r) => r.action === 'created').map((r) => r.name);
    expect(created).toEqual(['PRODUCTS', 'TICKS', 'CANDLES', 'LAKE', 'LAKE_OPS']); // DLQ exists from the fixture
    expect(first.find((r) => r.name === 'DLQ')?.action).toBe('unchanged');

    const again = await ensureStreams(f.bus.jsm);
    expect(again.every((r) => r.action === 'unchanged')).toBe(true);

    const updated = await ensureStreams(f.bus.jsm, STREAM_DEFS, { duplicateWindowMs: 30_000 });
    expect(updated.every((r) => r.action === 'updated' && r.changed.includes('duplicate_window'))).toBe(true);
    const ticks = await f.bus.jsm.streams.info('TICKS');
    expect(ticks.config.duplicate_window).toBe(30_000 * 1_000_000);
    expect(ticks.config.storage).toBe('file');
    expect(ticks.config.subjects).toEqual(['market.ticks.>']);
    expect((await f.bus.jsm.streams.info('LAKE_OPS')).config.retention).toBe('workqueue');
  });

  it('refuses to change what cannot change in place', async () => {
    const def = STREAM_DEFS.find((d) => d.name === 'CANDLES')!;
    await expect(ensureStreams(f.bus.jsm, [{ ...def, retention: 'workqueue' }])).rejects.toThrow(/retention/);
  });
});

describe('ensureConsumer', () => {
  it('creates, leaves alone, and updates a durable pull consumer', async () => {
    const s = await testStream(f.bus);
    const opts = { filterSubjects: [s.subject('a')], ackWaitMs: 10_000, maxAckPending: 50 };
    expect((await ensureConsumer(f.bus.jsm, s.name, 'durable-x', opts)).action).toBe('created');
    expect((await ensureConsumer(f.bus.jsm, s.name, 'durable-x', opts)).action).toBe('unchanged');
    const changed = await ensureConsumer(f.bus.jsm, s.name, 'durable-x', { ...opts, maxAckPending: 70 });
    expect(changed).toMatchObject({ action: 'updated', changed: ['max_ack_pending'] });
    const info = await f.bus.jsm.consumers.info(s.name, 'durable-x');
    expect(info.config).toMatchObject({
      ack_policy: 'explicit',
      ack_wait: 10_000 * 1_000_000,
      max_ack_pending: 70,
      filter_subject: s.subject('a'),
      max_deliver: -1,
    });
  });
});

describe('publish', () => {
  it('sets Nats-Msg-Id so a repeat inside the window is dropped', async () => {
    const s = await testStream(f.bus);
    const a = await publishJson(
      f.bus.js,
      s.subject(),
      { n: 1 },
      { msgId: 'same', headers: { 'Trace-Id': 't1' } },
    );
    const b = await publishJson(f.bus.js, s.subject(), { n: 1 }, { msgId: 'same' });
    expect(a.duplicate).toBe(false);
    expect(b.duplicate).toBe(true);
    const stored = await f.bus.jsm.streams.getMessage(s.name, { seq: a.seq });
    expect(stored?.json()).toEqual({ n: 1 });
    expect(stored?.header.get('Trace-Id')).toBe('t1');
  });

  it('publishes in chunks and counts duplicates', async () => {
    const s = await testStream(f.bus);
    const messages = Array.from({ length: 2500 }, (_, i) => ({
      subject: s.subject(),
      payload: { i },
      msgId: `m-${i % 2000}`,
    }));
    const progress: number[] = [];
    const res = await publishBatch(f.bus.js, messages, {
      chunkSize: 1000,
      onProgress: (n) => progress.push(n),
    });
    expect(res).toEqual({ published: 2500, duplicates: 500, lastSeq: 2000 });
    expect(progress).toEqual([1000, 2000, 2500]);
    expect((await f.bus.jsm.streams.info(s.name)).state.messages).toBe(2000);
  });

  it('publishes fast through a shared reply inbox, with flow control and duplicate counts', async () => {
    const s = await testStream(f.bus);
    const messages = Array.from({ length: 3000 }, (_, i) => ({
      subject: s.subject(),
      payload: { i },
      msgId: `f-${i % 2500}`,
      headers: { 'Trace-Id': `t-${i}` },
    }));
    const res = await publishFast(f.bus.nc, messages, { window: 100 });
    expect(res).toEqual({ published: 3000, duplicates: 500, lastSeq: 2500 });
    expect((await f.bus.jsm.streams.info(s.name)).state.messages).toBe(2500);
    const last = await f.bus.jsm.streams.getMessage(s.name, { seq: 2500 });
    expect(last?.json()).toEqual({ i: 2499 });
    expect(last?.header.get('Trace-Id')).toBe('t-2499');
  });

  it('publishFast reports messages no stream stored', async () => {
    const s = await testStream(f.bus);
    const messages = [
      { subject: s.subject(), payload: { ok: 1 } },
      { subject: 'nostream.here', payload: { ok: 0 } },
    ];
    await expect(publishFast(f.bus.nc, messages, { ackTimeoutMs: 500 })).rejects.toMatchObject({
      code: 'publish_failed',
      details: { published: 1 },
    });
  });

  it('rejects a message above max_payload as invalid input', async () => {
    const s = await testStream(f.bus);
    const big = 'x'.repeat(f.bus.nc.info!.max_payload + 1);
    await expect(publishJson(f.bus.js, s.subject(), { big })).rejects.toMatchObject({ code: 'too_large' });
  });
});
