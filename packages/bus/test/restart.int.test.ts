import { Writable } from 'node:stream';
import { silentLogger } from '@parquetry/service';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Bus, connectBus } from '../src/connection.js';
import { type ConsumerLoop, runConsumer } from '../src/consumer-loop.js';
import { Outcomes } from '../src/outcome.js';
import { publishBatch } from '../src/publish.js';
import { type NatsFixture, natsFixture, sleep, testStream, waitFor } from './helpers.js';

let f: NatsFixture;
let loop: ConsumerLoop | undefined;
let watcher: Bus | undefined;
const logLines: { level: number; msg: string }[] = [];
beforeAll(async () => {
  f = await natsFixture();
  // A second connection whose status log lines we keep.
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) logLines.push(JSON.parse(line));
      done();
    },
  });
  watcher = await connectBus({ url: f.server.url, name: 'watcher', logger: pino({ level: 'debug' }, sink) });
});
afterAll(async () => {
  await loop?.stop();
  await watcher?.close();
  await f?.close();
});

async function publishRange(subject: string, from: number, to: number) {
  const messages = [];
  for (let i = from; i < to; i++) messages.push({ subject, payload: { i }, msgId: `m-${i}` });
  await publishBatch(f.bus.js, messages, { chunkSize: 100 });
}

describe('a NATS server restart mid-stream', () => {
  it('loses nothing: every message is processed at least once and the loop keeps going', async () => {
    const s = await testStream(f.bus, { ackWaitMs: 2000 });
    await publishRange(s.subject(), 0, 300);
    const processed = new Set<number>();
    let deliveries = 0;
    loop = await runConsumer({
      js: f.bus.js,
      nc: f.bus.nc,
      stream: s.name,
      durable: s.durable,
      dlqService: 'restart',
      logger: silentLogger(),
      batchSize: 20,
      maxWaitMs: 1000,
      handler: async (batch) => {
        deliveries += batch.length;
        await sleep(5); // slow enough that the restart lands mid-stream
        for (const m of batch) processed.add((m.json() as { i: number }).i);
        return batch.map(() => Outcomes.ack());
      },
    });
    await waitFor('some progress', () => processed.size >= 60);
    expect(processed.size).toBeLessThan(300);
    await f.server.restart();
    await waitFor('reconnected', () => f.bus.isConnected() && watcher!.isConnected(), 10_000);
    // The connection logs the outage (warn) and the recovery (info) instead of failing.
    await waitFor('status logged', () => logLines.some((l) => l.msg === 'nats_reconnected'));
    expect(logLines.find((l) => l.msg === 'nats_disconnected')?.level).toBe(40);
    expect(logLines.find((l) => l.msg === 'nats_reconnected')?.level).toBe(30);
    await publishRange(s.subject(), 300, 400);
    await waitFor('all 400 processed', () => processed.size === 400, 15_000);
    expect([...processed].sort((a, b) => a - b)).toEqual(Array.from({ length: 400 }, (_, i) => i));
    expect(deliveries).toBeGreaterThanOrEqual(400);
    await waitFor(
      'all acked on the server',
      async () => {
        const info = await f.bus.jsm.consumers.info(s.name, s.durable);
        return info.ack_floor.stream_seq === 400 && info.num_pending === 0;
      },
      10_000,
    );
  });
});
