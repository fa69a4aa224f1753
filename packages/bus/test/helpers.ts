import { type Logger, silentLogger } from '@parquetry/service';
import { type NatsServerHandle, startNats } from '@parquetry/testkit';
import { type Bus, connectBus } from '../src/connection.js';
import { ensureConsumer } from '../src/consumers.js';
import { ensureStream, STREAM_DEFS, STREAM_NAMES, type StreamDef } from '../src/streams.js';

export interface NatsFixture {
  server: NatsServerHandle;
  bus: Bus;
  close(): Promise<void>;
}

/** A real nats-server, a bus connection to it and the DLQ stream. */
export async function natsFixture(logger: Logger = silentLogger()): Promise<NatsFixture> {
  const server = await startNats();
  const bus = await connectBus({
    url: server.url,
    name: 'bus-test',
    logger,
    reconnect: { maxMs: 250 },
  });
  const dlq = STREAM_DEFS.find((d) => d.name === STREAM_NAMES.dlq)!;
  await ensureStream(bus.jsm, dlq);
  return {
    server,
    bus,
    async close() {
      await bus.nc.close();
      await server.stop();
    },
  };
}

let streams = 0;

export interface TestStream {
  name: string;
  durable: string;
  /** A subject of this stream. */
  subject(suffix?: string): string;
}

/** A fresh stream `T<n>` on `t<n>.>` with a durable consumer, so tests share nothing. */
export async function testStream(bus: Bus, consumer: { ackWaitMs?: number; maxAckPending?: number } = {}) {
  const n = ++streams;
  const def: StreamDef = {
    name: `T${n}_${process.pid}`,
    subjects: [`t${n}.>`],
    description: 'test',
    retention: 'limits',
    maxAgeMs: 3_600_000,
    maxBytes: 64 * 1024 * 1024,
    discard: 'old',
  };
  await ensureStream(bus.jsm, def);
  const durable = `c${n}`;
  await ensureConsumer(bus.jsm, def.name, durable, { ackWaitMs: 30_000, ...consumer });
  return { name: def.name, durable, subject: (suffix = 'x') => `t${n}.${suffix}` } satisfies TestStream;
}

/** Poll until `check` holds (fails the test with `what` after timeoutMs). */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
