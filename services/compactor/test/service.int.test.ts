import { type Bus, connectBus, ensureStreams, publishJson, STREAM_NAMES, subjects } from '@parquetry/bus';
import { loadConfig, Metrics, silentLogger } from '@parquetry/service';
import { type NatsServerHandle, requireServers, startNats } from '@parquetry/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Compactor, createCompactor } from '../src/app.js';
import { compactorConfigSchema } from '../src/config.js';
import { addTicksFile, type Lake, openLake } from './harness.js';

const skip = await requireServers({ nats: true });
const DAY = '2025-09-03';

async function startCompactor(
  lake: Lake,
  bus: Bus,
  env: Record<string, string>,
  metrics = new Metrics('compactor', { defaults: false }),
): Promise<Compactor> {
  const config = loadConfig(compactorConfigSchema, {
    ...lake.env,
    LOG_LEVEL: 'silent',
    POLICY_ENABLED: 'false',
    WORK_DIR: `${lake.scratch}/work-${env.INSTANCE_ID}`,
    DUCKDB_MEMORY_LIMIT: '256MB',
    JOB_ACK_WAIT_MS: '5000',
    ...env,
  });
  return createCompactor({
    config,
    bus,
    store: lake.store,
    logger: silentLogger(),
    metrics,
  });
}

describe.skipIf(skip)('the compactor service on the LAKE_OPS work queue', () => {
  let nats: NatsServerHandle;
  let lake: Lake;
  beforeAll(async () => {
    nats = await startNats();
    // The services use the default catalog bucket.
    lake = await openLake('fs', nats.url, undefined, { catalogBucket: 'lake_catalog' });
  });
  afterAll(async () => {
    await lake?.close();
    await nats?.stop();
  });

  it('two instances run each job once, publish every result and dead-letter a bad job', async () => {
    const symbols = ['A', 'B', 'C', 'D'];
    for (const s of symbols) for (let i = 0; i < 4; i++) await addTicksFile(lake, s, DAY, 200, i + 1);
    const bus1 = await connectBus({ url: nats.url, name: 'c1', logger: silentLogger() });
    const bus2 = await connectBus({ url: nats.url, name: 'c2', logger: silentLogger() });
    const client = await connectBus({ url: nats.url, name: 'client', logger: silentLogger() });
    await ensureStreams(client.jsm);
    const results: { subject: string; body: Record<string, unknown> }[] = [];
    const sub = client.nc.subscribe('lake.results.>', {
      callback: (_e, m) => {
        results.push({ subject: m.subject, body: m.json() });
      },
    });
    const metrics = new Metrics('compactor', { defaults: false });
    const a = await startCompactor(lake, bus1, { INSTANCE_ID: 'c1' }, metrics);
    const b = await startCompactor(lake, bus2, { INSTANCE_ID: 'c2' });
    try {
      for (const s of symbols) {
        await publishJson(client.js, subjects.lakeOps('compact'), {
          op_id: `job-${s}`,
          dataset: 'ticks',
          partitions: [{ column: 'symbol', op: '=', value: s }],
        });
      }
      // A job without an op id gets one from its stream position.
      await publishJson(client.js, subjects.lakeOps('delete'), {
        dataset: 'ticks',
        partitions: [{ column: 'symbol', op: '=', value: 'A' }],
        filters: [{ column: 'side', op: 'is_null', value: true }],
      });
      await publishJson(client.js, subjects.lakeOps('update'), {
        dataset: 'ticks',
        filters: [],
        set: { nope: 1 },
      });

      const deadline = Date.now() + 30_000;
      while (results.length < 6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      await new Promise((r) => setTimeout(r, 1000)); // any duplicate would show up now
      expect(results.length).toBe(6);
      const compacts = results.filter((r) => r.subject.startsWith('lake.results.compact.'));
      expect(compacts.map((r) => r.body.op_id).sort()).toEqual(symbols.map((s) => `job-${s}`));
      for (const r of compacts) expect(r.body.status).toBe('committed');
      const del = results.find((r) => r.subject.startsWith('lake.results.delete.'))!;
      expect(del.body.status).toBe('committed');
      expect(String(del.body.op_id)).toMatch(/^q\d+-/);
      const bad = results.find((r) => r.subject.startsWith('lake.results.update.'))!;
      expect(bad.body.status).toBe('failed');
      expect((bad.body.error as { message: string }).message).toMatch(/unknown column/);

      // Each partition was compacted by exactly one commit.
      for (const s of symbols) {
        const m = await lake.catalog.partition('ticks', { symbol: s, date: DAY });
        expect(m.commits.filter((c) => c.startsWith(`compact-job-${s}.`)).length).toBe(1);
        expect(m.files.length).toBe(1);
      }
      // The bad job is in the DLQ; the work queue is empty.
      const dlq = await client.jsm.streams.info(STREAM_NAMES.dlq);
      expect(dlq.state.messages).toBe(1);
      expect(await metrics.text()).toMatch(/^parquetry_dlq_messages\{service="compactor"\} 1$/m);
      const ops = await client.jsm.streams.info(STREAM_NAMES.lakeOps);
      expect(ops.state.messages).toBe(0);
    } finally {
      sub.unsubscribe();
      await a.stop();
      await b.stop();
      await bus1.close();
      await bus2.close();
      await client.close();
    }
  });
});
