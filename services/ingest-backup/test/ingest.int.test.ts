import { listDeadLetters, publishBatch, publishJson, subjects } from '@parquetry/bus';
import { productFieldName } from '@parquetry/lake';
import {
  type NatsServerHandle,
  productFixtureBatches,
  readParquetIndependent,
  requireServers,
  type S3ServerHandle,
  startNats,
  startS3,
  tempDir,
} from '@parquetry/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startIngest, waitFor } from './harness.js';

const skip = await requireServers({ nats: true });

/** The lake's products, read back through the catalog's live files with DuckDB. */
async function lakeProducts(h: Harness) {
  const files = await h.app.catalog.liveFiles('products');
  const paths = await Promise.all(files.map((f) => h.store.localPath(f.path)));
  return { files, paths };
}

async function sumRows(h: Harness, dataset: string) {
  return (await h.app.catalog.liveFiles(dataset)).reduce((n, f) => n + f.rows, 0);
}

describe.skipIf(skip)('ingest-backup, real data, both lakes', () => {
  let nats: NatsServerHandle;
  let s3: S3ServerHandle;
  const tmp = tempDir('pq-ingest-');
  beforeAll(async () => {
    nats = await startNats();
    s3 = await startS3();
  });
  afterAll(async () => {
    await nats?.stop();
    await s3?.stop();
    tmp.remove();
  });

  for (const kind of ['fs', 's3'] as const) {
    it(`lands every real scraped record and field exactly once (${kind} lake)`, async () => {
      const lakeUrl = kind === 'fs' ? `file://${tmp.path}/lake` : s3.lakeUrl();
      // A catalog describes one lake: each lake gets its own server (streams and catalog).
      const server = await startNats();
      const h = await startIngest({
        NATS_URL: server.url,
        LAKE_URL: lakeUrl,
        ...(kind === 's3' ? s3.env : {}),
      });
      try {
        const batches = productFixtureBatches(300);
        const expected = batches.reduce((n, b) => n + b.products.length, 0);
        await publishBatch(
          h.bus.js,
          batches.map((b) => ({
            subject: subjects.products(b.retailer, b.category),
            payload: b,
            msgId: b.batch_id,
          })),
        );
        // The same batches again with new message ids (past JetStream's duplicate window): dropped by batch id.
        await publishBatch(
          h.bus.js,
          batches.slice(0, 20).map((b) => ({
            subject: subjects.products(b.retailer, b.category),
            payload: b,
            msgId: `${b.batch_id}-again`,
          })),
        );
        // Generous: 269 retailer/category groups on a loaded 2-core CI machine.
        await waitFor(
          'all products',
          async () => ((await sumRows(h, 'products')) >= expected ? true : undefined),
          180_000,
        );
        await new Promise((r) => setTimeout(r, 800));
        expect(await sumRows(h, 'products')).toBe(expected);

        const { files: liveFiles, paths } = await lakeProducts(h);
        // Metrics behind the seed's alerts: the last backup per retailer, every file's size, lag.
        const metric = async (name: string) =>
          (await h.metrics.registry.getSingleMetric(name)!.get()).values.map((v) => ({
            labels: v.labels,
            value: v.value,
            name: (v as { metricName?: string }).metricName,
          }));
        const retailers = [...new Set(batches.map((b) => b.retailer))].sort();
        const last = await metric('parquetry_backup_last_timestamp_seconds');
        expect(last.map((v) => v.labels.retailer).sort()).toEqual(retailers);
        for (const v of last) expect(Math.abs(v.value - Date.now() / 1000)).toBeLessThan(600);
        const sizes = (await metric('parquetry_backup_bytes')).filter(
          (v) => v.name === 'parquetry_backup_bytes_count',
        );
        expect(sizes.reduce((n, v) => n + v.value, 0)).toBe(liveFiles.length);
        const pending = (await metric('parquetry_consumer_pending_messages')).find(
          (v) => v.labels.stream === 'PRODUCTS',
        );
        expect(pending?.value).toBe(0);
        const conn = h.duck.conn;
        const list = `[${paths.map((p) => `'${p}'`).join(',')}]`;
        const counts = await conn.runAndReadAll(
          `SELECT batch_id, count(*)::INTEGER AS n FROM read_parquet(${list}, union_by_name=true) GROUP BY batch_id`,
        );
        const perBatch = new Map(counts.getRowObjectsJS().map((r) => [r.batch_id as string, r.n as number]));
        for (const b of batches) expect(perBatch.get(b.batch_id)).toBe(b.products.length);

        // Independent reader: every field of every record, as the scraper sent it.
        const byBatch = new Map<string, Record<string, unknown>[]>();
        for (const p of paths) {
          for (const row of await readParquetIndependent(p)) {
            const list = byBatch.get(row.batch_id as string) ?? [];
            list.push(row);
            byBatch.set(row.batch_id as string, list);
          }
        }
        let compared = 0;
        for (const b of batches) {
          const rows = byBatch.get(b.batch_id)!;
          expect(rows).toHaveLength(b.products.length);
          const remaining = [...rows];
          for (const product of b.products) {
            const i = remaining.findIndex((r) =>
              Object.entries(product).every(([k, v]) => sameValue(r[productFieldName(k)], v)),
            );
            expect(
              i,
              `product ${JSON.stringify(product).slice(0, 200)} of ${b.batch_id}`,
            ).toBeGreaterThanOrEqual(0);
            remaining.splice(i, 1);
            compared++;
          }
          expect(rows[0]!.retailer).toBe(b.retailer);
          expect(rows[0]!.category).toBe(b.category);
          expect(String(rows[0]!.backup_id)).toMatch(/^[a-z0-9]{8}$/);
        }
        expect(compared).toBe(expected);

        // Per-day metadata lists every backup.
        const { files } = await lakeProducts(h);
        const jumboDay = files.find((f) => f.path.startsWith('products/retailer=jumbo/date=2024-11-03/'))!;
        const md = JSON.parse(
          (
            await h.store.getBytes('products/retailer=jumbo/date=2024-11-03/_metadata_20241103.json')
          ).toString(),
        );
        expect(md.backups.map((b: { file_path: string }) => b.file_path)).toContain(jumboDay.path);
        const mdCount = md.backups.reduce(
          (n: number, b: { products_count: number }) => n + b.products_count,
          0,
        );
        expect(mdCount).toBe(
          batches.filter((b) => b.retailer === 'jumbo').reduce((n, b) => n + b.products.length, 0),
        );
        for (const key of [
          'category',
          'timestamp',
          'products_count',
          'file_size_mb',
          'file_path',
          'scraping_session_id',
          'execution_time_seconds',
          'success_rate',
          'errors',
          'warnings',
        ]) {
          expect(md.backups[0]).toHaveProperty(key);
        }
      } finally {
        await h.close();
        await server.stop();
      }
    });
  }

  it('dead-letters each kind of bad input with its reason and keeps going', async () => {
    const h = await startIngest({
      NATS_URL: nats.url,
      LAKE_URL: `file://${tmp.path}/bad`,
      MAX_MESSAGE_BYTES: '65536',
    });
    try {
      const nc = h.bus.nc;
      const good = (id: string, extra: Record<string, unknown> = {}) => ({
        batch_id: id,
        retailer: 'ripley',
        category: 'tv',
        scraped_at: '2025-09-03T10:00:00Z',
        products: [
          { sku: 'a', precio: 10 },
          { sku: 'b', precio: '10.990' },
        ],
        ...extra,
      });
      const before = (await listDeadLetters(h.bus, { service: 'ingest-backup', limit: 1000 })).length;
      await h.bus.js.publish(
        'scraper.products.ripley.tv',
        new TextEncoder().encode('{"batch_id": "x", nope'),
      );
      await publishJson(h.bus.js, 'scraper.products.ripley.tv', {
        batch_id: 'no-products-field',
        retailer: 'ripley',
      });
      await publishJson(h.bus.js, 'scraper.products.x.tv', good('dots', { retailer: '..' }));
      await publishJson(h.bus.js, 'scraper.products.x.tv', good('slash', { retailer: 'a/b' }));
      await publishJson(h.bus.js, 'scraper.products.x.tv', good('upper', { retailer: 'Ripley' }));
      await publishJson(h.bus.js, 'scraper.products.x.tv', good('dotted', { retailer: 'rip.ley' }));
      await publishJson(h.bus.js, 'scraper.products.ripley.tv', good('empty', { products: [] }));
      await publishJson(
        h.bus.js,
        'scraper.products.ripley.tv',
        good('huge', { products: [{ blob: 'x'.repeat(100_000) }] }),
      );
      // Mixed types between records are kept, not rejected.
      await publishJson(
        h.bus.js,
        'scraper.products.ripley.tv',
        good('mixed', { products: [{ p: 1 }, { p: 'uno' }, { p: { nested: [1] } }] }),
      );
      // Field names DuckDB cannot tell apart send their group through the JS writer, which reads
      // the bodies back from the spill.
      await publishJson(
        h.bus.js,
        'scraper.products.ripley.audio',
        good('twins', {
          category: 'audio',
          products: [
            { sku: 't1', Precio: 1, precio: 2 },
            { sku: 't2', Precio: 3, precio: 4 },
          ],
        }),
      );
      await publishJson(h.bus.js, 'scraper.products.ripley.tv', good('after'));
      void nc;
      const letters = await waitFor('8 dead letters', async () => {
        const l = await listDeadLetters(h.bus, { service: 'ingest-backup', limit: 1000 });
        return l.length - before >= 8 ? l.slice(before) : undefined;
      });
      expect(letters.map((l) => l.reason).sort()).toEqual(
        [
          'empty_products',
          'invalid_json',
          'invalid_name',
          'invalid_name',
          'invalid_name',
          'invalid_name',
          'schema_violation',
          'too_large',
        ].sort(),
      );
      for (const l of letters) expect(l.originalSubject).toMatch(/^scraper\.products\./);
      await waitFor('good batches', async () => ((await sumRows(h, 'products')) >= 7 ? true : undefined));
      const files = await h.app.catalog.liveFiles('products');
      const rows = (
        await Promise.all(files.map(async (f) => readParquetIndependent(await h.store.localPath(f.path))))
      ).flat();
      const mixed = rows.filter((r) => r.batch_id === 'mixed').map((r) => r.p);
      expect(mixed.sort()).toEqual(['"uno"', '1', '{"nested":[1]}'].sort());
      expect(rows.filter((r) => r.batch_id === 'after')).toHaveLength(2);
      const twins = rows.filter((r) => r.batch_id === 'twins');
      expect(twins.map((r) => r.sku).sort()).toEqual(['t1', 't2']);
      expect(twins.flatMap((r) => Object.values(r).map(String))).toEqual(
        expect.arrayContaining(['1', '2', '3', '4']),
      );
    } finally {
      await h.close();
    }
  });
});

function sameValue(actual: unknown, expected: unknown): boolean {
  if (expected === null || expected === undefined) return actual === null || actual === undefined;
  if (typeof expected === 'object')
    return actual === JSON.stringify(expected) || JSON.stringify(actual) === JSON.stringify(expected);
  if (typeof actual === 'bigint') return actual === BigInt(expected as number);
  return actual === expected;
}
