import { connectBus, publishBatch, subjects } from '@parquetry/bus';
import { createIngestBackup } from '@parquetry/ingest-backup/src/app.js';
import { ingestConfigSchema } from '@parquetry/ingest-backup/src/config.js';
import { openDuckDB } from '@parquetry/lake';
import { loadConfig, Metrics, silentLogger } from '@parquetry/service';
import { type NatsServerHandle, requireServers, startNats } from '@parquetry/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCompactor } from '../src/app.js';
import { compactorConfigSchema } from '../src/config.js';
import { type Lake, livePaths, openLake } from './harness.js';

const skip = await requireServers({ nats: true });

describe.skipIf(skip)('the compaction policy beside ingest-backup', () => {
  let nats: NatsServerHandle;
  let lake: Lake;
  beforeAll(async () => {
    nats = await startNats();
    lake = await openLake('fs', nats.url, undefined, { catalogBucket: 'lake_catalog' });
  });
  afterAll(async () => {
    await lake?.close();
    await nats?.stop();
  });

  it('compacts a partition ingest-backup keeps appending to, and no product is lost or doubled', async () => {
    const logger = silentLogger();
    const ingestBus = await connectBus({ url: nats.url, name: 'ingest', logger });
    const compactorBus = await connectBus({ url: nats.url, name: 'compactor', logger });
    const client = await connectBus({ url: nats.url, name: 'client', logger });
    const duck = await openDuckDB({ threads: 1 });
    const ingest = await createIngestBackup({
      config: loadConfig(ingestConfigSchema, {
        ...lake.env,
        LOG_LEVEL: 'silent',
        FLUSH_MAX_AGE_MS: '60',
        ARCHIVE_TICKS: 'false',
        INSTANCE_ID: 'ingest-1',
      }),
      bus: ingestBus,
      store: lake.store,
      duck,
      logger,
      metrics: new Metrics('ingest-backup', { defaults: false }),
    });
    const compactor = await createCompactor({
      config: loadConfig(compactorConfigSchema, {
        ...lake.env,
        LOG_LEVEL: 'silent',
        INSTANCE_ID: 'compactor-1',
        WORK_DIR: `${lake.scratch}/compactor`,
        POLICY_ENABLED: 'false',
        POLICY_DATASETS: 'products',
        POLICY_MAX_SMALL_FILES: '3',
        POLICY_SMALL_FILE_MB: '4',
      }),
      bus: compactorBus,
      store: lake.store,
      logger,
      metrics: new Metrics('compactor', { defaults: false }),
    });

    const BATCHES = 400;
    const PER = 5;
    let compactions = 0;
    let publishing = true;
    try {
      const publisher = (async () => {
        for (let i = 0; i < BATCHES; i += 10) {
          await publishBatch(
            client.js,
            Array.from({ length: 10 }, (_, j) => {
              const n = i + j;
              return {
                subject: subjects.products('falabella', 'phones'),
                msgId: `b-${n}`,
                payload: {
                  batch_id: `b-${n}`,
                  retailer: 'falabella',
                  category: 'phones',
                  scraped_at: '2025-09-03T10:00:00Z',
                  products: Array.from({ length: PER }, (_, k) => ({ sku: `${n}-${k}`, precio: n * 10 + k })),
                },
              };
            }),
          );
          await new Promise((r) => setTimeout(r, 40));
        }
        publishing = false;
      })();
      // The policy, run back to back while ingest appends new small files to the same partition.
      while (publishing) {
        const run = await compactor.runPolicy();
        compactions += run.compacted.length;
        await new Promise((r) => setTimeout(r, 50));
      }
      await publisher;

      const expected = BATCHES * PER;
      const deadline = Date.now() + 30_000;
      let rows = 0;
      while (Date.now() < deadline) {
        rows = (await lake.catalog.liveFiles('products')).reduce((n, f) => n + f.rows, 0);
        if (rows >= expected) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      compactions += (await compactor.runPolicy()).compacted.length;
      expect(compactions).toBeGreaterThanOrEqual(2);

      const paths = await livePaths(lake, 'products');
      const r = await lake.conn.runAndReadAll(
        `SELECT count(*)::INTEGER AS n, count(DISTINCT sku)::INTEGER AS skus, count(DISTINCT batch_id)::INTEGER AS batches
           FROM read_parquet([${paths.map((p) => `'${p}'`).join(', ')}], union_by_name = true)`,
      );
      expect(r.getRowObjectsJS()[0]).toEqual({ n: expected, skus: expected, batches: BATCHES });
      // Compaction keeps the partition's source keys, so a replayed batch is still recognised.
      const m = await lake.catalog.partition('products', { retailer: 'falabella', date: '2025-09-03' });
      expect(m.sources.filter((s) => s.startsWith('b-')).length).toBeGreaterThanOrEqual(BATCHES);
      expect(m.files.length).toBeLessThanOrEqual(4);
    } finally {
      await ingest.stop();
      await compactor.stop();
      duck.close();
      await ingestBus.close();
      await compactorBus.close();
      await client.close();
    }
  });
});
