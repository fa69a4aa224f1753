import { InvalidInputError, Metrics, silentLogger, TransientError } from '@parquetry/service';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConsumerLoop, type RunConsumerOptions, runConsumer } from '../src/consumer-loop.js';
import { DLQ_HEADERS } from '../src/dead-letter.js';
import { listDeadLetters, showDeadLetter } from '../src/dlq.js';
import type { BusMessage } from '../src/message.js';
import { Outcomes } from '../src/outcome.js';
import { publishBatch, publishJson } from '../src/publish.js';
import { type NatsFixture, natsFixture, sleep, type TestStream, testStream, waitFor } from './helpers.js';

let f: NatsFixture;
const loops: ConsumerLoop[] = [];
beforeAll(async () => {
  f = await natsFixture();
});
afterAll(async () => {
  await Promise.all(loops.map((l) => l.stop()));
  await f?.close();
});

async function start(
  s: TestStream,
  service: string,
  handler: RunConsumerOptions['handler'],
  opts: Partial<RunConsumerOptions> = {},
): Promise<ConsumerLoop> {
  const loop = await runConsumer({
    js: f.bus.js,
    nc: f.bus.nc,
    stream: s.name,
    durable: s.durable,
    handler,
    dlqService: service,
    logger: silentLogger(),
    maxWaitMs: 1000,
    backoffJitter: 0,
    stopTimeoutMs: 3000,
    ...opts,
  });
  loops.push(loop);
  return loop;
}

async function publishN(s: TestStream, n: number, body: (i: number) => unknown = (i) => ({ i })) {
  await publishBatch(
    f.bus.js,
    Array.from({ length: n }, (_, i) => ({ subject: s.subject(), payload: body(i) })),
  );
}

const pending = async (s: TestStream) => (await f.bus.jsm.consumers.info(s.name, s.durable)).num_ack_pending;
const ackFloor = async (s: TestStream) =>
  (await f.bus.jsm.consumers.info(s.name, s.durable)).ack_floor.stream_seq;

describe('runConsumer', () => {
  it('acks only after the work: held messages stay pending, and no more than maxInFlight are out', async () => {
    const s = await testStream(f.bus);
    await publishN(s, 15);
    const held: BusMessage[] = [];
    const batchSizes: number[] = [];
    const loop = await start(
      s,
      'hold',
      (batch) => {
        batchSizes.push(batch.length);
        held.push(...batch);
      },
      { batchSize: 5, maxInFlight: 10 },
    );
    await waitFor('10 messages held', () => held.length === 10);
    await sleep(300);
    expect(held).toHaveLength(10); // the loop does not pull past maxInFlight
    expect(Math.max(...batchSizes)).toBeLessThanOrEqual(5);
    expect(await pending(s)).toBe(10); // nothing acked while the work is not durable
    expect(await ackFloor(s)).toBe(0);

    for (const m of held.splice(0)) await m.ack();
    await waitFor('the last 5 messages', () => held.length === 5);
    for (const m of held) await m.ack();
    await waitFor('all acked', async () => (await ackFloor(s)) === 15);
    expect(loop.stats()).toMatchObject({ consumed: 15, acked: 15, retried: 0, deadLettered: 0, inFlight: 0 });
    await loop.stop();
  });

  it('does not pull past maxInFlightBytes while a handler holds large messages', async () => {
    const s = await testStream(f.bus);
    // 20 messages of ~10 KB; room for ~3 of them (a pull may overshoot by what it asked for).
    await publishN(s, 20, (i) => ({ i, pad: 'x'.repeat(10_000) }));
    const held: BusMessage[] = [];
    const loop = await start(
      s,
      'hold-bytes',
      (batch) => {
        held.push(...batch);
      },
      { batchSize: 2, maxInFlight: 100, maxInFlightBytes: 30_000, maxPullBytes: 1 },
    );
    await waitFor('some messages held', () => held.length >= 2);
    await sleep(500);
    const heldBytes = held.reduce((n, m) => n + m.size, 0);
    expect(held.length).toBeLessThan(20);
    expect(heldBytes).toBeLessThan(30_000 + 2 * 10_100);
    // Settling makes room: everything arrives in the end.
    while (held.length < 20 || held.some((m) => !m.settled)) {
      for (const m of held) if (!m.settled) await m.ack();
      await sleep(50);
    }
    await waitFor('all acked', async () => (await ackFloor(s)) === 20);
    await loop.stop();
  });

  it('applies outcomes returned per message and counts them in metrics', async () => {
    const s = await testStream(f.bus);
    await publishN(s, 4);
    const metrics = new Metrics('bus-test', { defaults: false });
    const loop = await start(
      s,
      'outcomes',
      (batch) =>
        batch.map((m) => ((m.json() as { i: number }).i === 3 ? Outcomes.dead('odd_one') : Outcomes.ack())),
      { metrics, batchSize: 10 },
    );
    await waitFor('all settled', () => loop.stats().acked === 3 && loop.stats().deadLettered === 1);
    const text = await metrics.text();
    expect(text).toMatch(
      new RegExp(`parquetry_messages_acked_total\\{stream="${s.name}",service="bus-test"\\} 3`),
    );
    expect(text).toMatch(
      /parquetry_dead_letters_total\{stream="[^"]+",reason="odd_one",service="bus-test"\} 1/,
    );
    expect(text).toMatch(
      new RegExp(`parquetry_messages_consumed_total\\{stream="${s.name}",service="bus-test"\\} 4`),
    );
    await loop.stop();
  });

  it('retries a retryable error with the backoff delay, then succeeds', async () => {
    const s = await testStream(f.bus);
    await publishJson(f.bus.js, s.subject(), { n: 1 });
    const deliveries: { count: number; at: number; redelivered: boolean }[] = [];
    const loop = await start(
      s,
      'retry',
      async (batch) => {
        for (const m of batch)
          deliveries.push({ count: m.deliveryCount, at: Date.now(), redelivered: m.redelivered });
        if (deliveries.length < 3) throw new TransientError('store hiccup');
        return batch.map(() => Outcomes.ack());
      },
      { backoff: [300, 600] },
    );
    await waitFor('acked', () => loop.stats().acked === 1, 5000);
    expect(deliveries.map((d) => d.count)).toEqual([1, 2, 3]);
    expect(deliveries.map((d) => d.redelivered)).toEqual([false, true, true]);
    expect(deliveries[1]!.at - deliveries[0]!.at).toBeGreaterThanOrEqual(280);
    expect(deliveries[2]!.at - deliveries[1]!.at).toBeGreaterThanOrEqual(580);
    expect(loop.stats()).toMatchObject({ retried: 2, deadLettered: 0 });
    expect(await listDeadLetters(f.bus, { service: 'retry' })).toEqual([]);
    await loop.stop();
  });

  it('dead-letters a permanent error with its origin in headers, and goes on with the next message', async () => {
    const s = await testStream(f.bus);
    await f.bus.js.publish(s.subject('bad'), 'not json {', { msgID: 'bad-1' });
    await publishJson(f.bus.js, s.subject('good'), { ok: true });
    const good: unknown[] = [];
    const loop = await start(
      s,
      'permanent',
      (batch) => {
        for (const m of batch) good.push(m.json()); // throws InvalidInputError on the bad one
        return batch.map(() => Outcomes.ack());
      },
      { batchSize: 1 },
    );
    await waitFor('good message processed', () => good.length === 1);
    await waitFor('dead letter', () => loop.stats().deadLettered === 1);
    expect(good).toEqual([{ ok: true }]);
    const [entry] = await listDeadLetters(f.bus, { service: 'permanent' });
    expect(entry).toMatchObject({
      subject: `dlq.permanent.${s.subject('bad')}`,
      originalSubject: s.subject('bad'),
      originalStream: s.name,
      originalSeq: 1,
      reason: 'invalid_json',
      code: 'invalid_json',
      deliveryCount: 1,
      consumer: s.durable,
    });
    const full = await showDeadLetter(f.bus, entry!.seq);
    expect(new TextDecoder().decode(full.data)).toBe('not json {');
    expect(full.headers[DLQ_HEADERS.originalMsgId]).toBe('bad-1');
    expect(full.error).toMatch(/not valid JSON/);
    // Terminated, not pending: it is never delivered again.
    await waitFor('ack floor past both', async () => (await ackFloor(s)) === 2);
    await loop.stop();
  });

  it('dead-letters after maxDeliver failed deliveries', async () => {
    const s = await testStream(f.bus);
    await publishJson(f.bus.js, s.subject(), { n: 1 });
    const seen: number[] = [];
    const loop = await start(
      s,
      'maxdeliver',
      (batch) => {
        seen.push(...batch.map((m) => m.deliveryCount));
        throw new TransientError('always down');
      },
      { maxDeliver: 3, backoff: [50] },
    );
    await waitFor('dead letter', () => loop.stats().deadLettered === 1);
    expect(seen).toEqual([1, 2, 3]);
    const [entry] = await listDeadLetters(f.bus, { service: 'maxdeliver' });
    expect(entry).toMatchObject({ reason: 'max_deliveries_exceeded', code: 'transient', deliveryCount: 3 });
    await sleep(200);
    expect(seen).toHaveLength(3);
    await loop.stop();
  });

  it('dead-letters a held message whose body was released with the body loaded back', async () => {
    const s = await testStream(f.bus);
    await publishJson(f.bus.js, s.subject(), { kept: 'elsewhere' });
    const stash = new Map<number, Uint8Array>();
    const loop = await start(s, 'released', (batch) => {
      for (const m of batch) {
        stash.set(m.seq, Uint8Array.from(m.data));
        m.releaseBody(async () => stash.get(m.seq)!);
        expect(() => m.data).toThrow(/released/);
        setTimeout(() => void m.deadLetter('rejected_later'), 20);
      }
      return [];
    });
    await waitFor('dead letter', () => loop.stats().deadLettered === 1);
    const [entry] = await listDeadLetters(f.bus, { service: 'released' });
    const full = await showDeadLetter(f.bus, entry!.seq);
    expect(JSON.parse(new TextDecoder().decode(full.data))).toEqual({ kept: 'elsewhere' });
    await loop.stop();
  });

  it('dead-letters a message delivered too often without a failure (held past ack_wait)', async () => {
    const s = await testStream(f.bus, { ackWaitMs: 200 });
    await publishJson(f.bus.js, s.subject(), { n: 1 });
    const seen: number[] = [];
    const loop = await start(s, 'ackwait', (batch) => void seen.push(...batch.map((m) => m.deliveryCount)), {
      maxDeliver: 2,
    });
    await waitFor('dead letter', () => loop.stats().deadLettered === 1, 5000);
    expect(seen).toEqual([1, 2]);
    expect(loop.stats().inFlight).toBe(0); // the held first copy was superseded by the redelivery
    const [entry] = await listDeadLetters(f.bus, { service: 'ackwait' });
    expect(entry).toMatchObject({ reason: 'max_deliveries_exceeded', deliveryCount: 3 });
    await loop.stop();
  });

  it('dead-letters oversized messages without handing them to the handler', async () => {
    const s = await testStream(f.bus);
    const big = { pad: 'x'.repeat(500) };
    await publishJson(f.bus.js, s.subject(), big);
    await publishJson(f.bus.js, s.subject(), { small: true });
    const seen: unknown[] = [];
    const loop = await start(
      s,
      'toolarge',
      (batch) => {
        seen.push(...batch.map((m) => m.json()));
        return batch.map(() => Outcomes.ack());
      },
      { maxMessageBytes: 100 },
    );
    await waitFor('both settled', () => loop.stats().acked === 1 && loop.stats().deadLettered === 1);
    expect(seen).toEqual([{ small: true }]);
    const [entry] = await listDeadLetters(f.bus, { service: 'toolarge' });
    expect(entry).toMatchObject({ reason: 'too_large', size: JSON.stringify(big).length });
    await loop.stop();
  });

  it('settles through message methods: nak with delay, fail, inProgress', async () => {
    const s = await testStream(f.bus, { ackWaitMs: 400 });
    await publishJson(f.bus.js, s.subject(), { kind: 'slow' });
    await publishJson(f.bus.js, s.subject(), { kind: 'bad' });
    const deliveries: string[] = [];
    const loop = await start(s, 'methods', (batch) => {
      for (const m of batch) {
        const { kind } = m.json() as { kind: string };
        deliveries.push(`${kind}#${m.deliveryCount}`);
        if (kind === 'bad') void m.fail(new InvalidInputError('bad kind', { code: 'bad_kind' }));
        else if (m.deliveryCount === 1) void m.nak(100);
        else {
          // Longer than ack_wait, kept alive by inProgress().
          const timer = setInterval(() => m.inProgress(), 150);
          setTimeout(() => {
            clearInterval(timer);
            void m.ack();
          }, 900);
        }
      }
    });
    await waitFor('slow acked', () => loop.stats().acked === 1, 5000);
    expect(deliveries.sort()).toEqual(['bad#1', 'slow#1', 'slow#2']);
    expect((await listDeadLetters(f.bus, { service: 'methods' }))[0]).toMatchObject({ reason: 'bad_kind' });
    await loop.stop();
  });

  it('stop() stops fetching and waits for in-flight work, including what onStop flushes', async () => {
    const s = await testStream(f.bus);
    await publishN(s, 6);
    const held: BusMessage[] = [];
    let handed = 0;
    const loop = await start(
      s,
      'stop',
      (batch) => {
        handed += batch.length;
        for (const m of batch) {
          if ((m.json() as { i: number }).i % 2 === 0) setTimeout(() => void m.ack(), 300);
          else held.push(m);
        }
      },
      { onStop: () => Promise.all(held.map((m) => m.ack())).then(() => {}) },
    );
    await waitFor('all handed out', () => handed === 6);
    const t0 = Date.now();
    await loop.stop();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(200); // waited for the delayed acks
    expect(loop.stats()).toMatchObject({ acked: 6, inFlight: 0 });
    expect(loop.isRunning()).toBe(false);
    await waitFor('server saw the acks', async () => (await ackFloor(s)) === 6);
    await publishN(s, 2);
    await sleep(300);
    expect(handed).toBe(6); // no fetching after stop
  });

  it('stop() gives up after stopTimeoutMs on messages nobody settles', async () => {
    const s = await testStream(f.bus);
    await publishN(s, 2);
    let handed = 0;
    const loop = await start(
      s,
      'stoptimeout',
      (batch) => {
        handed += batch.length;
      },
      { stopTimeoutMs: 300 },
    );
    await waitFor('handed out', () => handed === 2);
    const t0 = Date.now();
    await loop.stop();
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(250);
    expect(took).toBeLessThan(2000);
    expect(loop.stats().inFlight).toBe(2);
  });

  it('fails fast when the consumer does not exist', async () => {
    const s = await testStream(f.bus);
    await expect(
      runConsumer({
        js: f.bus.js,
        nc: f.bus.nc,
        stream: s.name,
        durable: 'missing',
        handler: () => {},
        dlqService: 'x',
        logger: silentLogger(),
      }),
    ).rejects.toMatchObject({ code: 'not_found' });
  });
});
