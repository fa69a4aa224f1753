import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { connectBus, ensureStreams, publishBatch, subjects } from '@parquetry/bus';
import { openCatalog, openDuckDB, openObjectStore } from '@parquetry/lake';
import { silentLogger } from '@parquetry/service';
import { requireServers, startNats, tempDir } from '@parquetry/testkit';
import { describe, expect, it } from 'vitest';
import { waitFor } from './harness.js';

const skip = await requireServers({ nats: true });
const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

function startService(env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, [MAIN], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

async function kill9(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null) return;
  await new Promise<void>((r) => {
    p.once('exit', () => r());
    p.kill('SIGKILL');
  });
}

describe.skipIf(skip)('ingest-backup under kill -9', () => {
  it('lands every product of 10,000 batches exactly once across three kill -9 restarts', async () => {
    expect(existsSync(MAIN), 'build the service first (pnpm build)').toBe(true);
    const nats = await startNats();
    const tmp = tempDir('pq-kill9-');
    const env = {
      NATS_URL: nats.url,
      LAKE_URL: `file://${tmp.path}/lake`,
      HTTP_PORT: '0',
      FLUSH_MAX_AGE_MS: '150',
      // What a killed instance held comes back after ack_wait: keep the test short.
      ACK_WAIT_MS: '5000',
      LOG_LEVEL: 'warn',
      ARCHIVE_TICKS: 'false',
    };
    const bus = await connectBus({ url: nats.url, name: 'kill9-test', logger: silentLogger() });
    await ensureStreams(bus.jsm);
    let service = startService(env);
    try {
      const batches = Array.from({ length: 10_000 }, (_, i) => ({
        batch_id: `k9-${i}`,
        retailer: `r${i % 2}`,
        category: `c${i % 3}`,
        scraped_at: `2025-09-0${1 + (i % 2)}T10:00:00Z`,
        products: [0, 1, 2].map((j) => ({ sku: `${i}-${j}`, precio: i * 10 + j, nombre: `p ${i}` })),
      }));
      const publishing = (async () => {
        for (let i = 0; i < batches.length; i += 500) {
          await publishBatch(
            bus.js,
            batches.slice(i, i + 500).map((b) => ({
              subject: subjects.products(b.retailer, b.category),
              payload: b,
              msgId: b.batch_id,
            })),
          );
          await new Promise((r) => setTimeout(r, 60));
        }
      })();
      for (let k = 0; k < 3; k++) {
        await new Promise((r) => setTimeout(r, 400 + Math.random() * 600));
        await kill9(service);
        service = startService(env);
      }
      await publishing;

      const catalog = await openCatalog({ nc: bus.nc });
      const total = await waitFor(
        'all 30,000 products committed',
        async () => {
          const n = (await catalog.liveFiles('products')).reduce((s, f) => s + f.rows, 0);
          return n >= 30_000 ? n : undefined;
        },
        90_000,
      );
      await new Promise((r) => setTimeout(r, 1000));
      const files = await catalog.liveFiles('products');
      expect(files.reduce((s, f) => s + f.rows, 0)).toBe(30_000);
      expect(total).toBe(30_000);

      const store = openObjectStore(env.LAKE_URL);
      const duck = await openDuckDB({ threads: 1 });
      const paths = await Promise.all(files.map((f) => store.localPath(f.path)));
      const r = await duck.conn.runAndReadAll(
        `SELECT count(*)::INTEGER n, count(DISTINCT sku)::INTEGER skus, count(DISTINCT batch_id)::INTEGER batches
         FROM read_parquet([${paths.map((p) => `'${p}'`).join(',')}], union_by_name=true)`,
      );
      expect(r.getRowObjectsJS()[0]).toEqual({ n: 30_000, skus: 30_000, batches: 10_000 });
      duck.close();
    } finally {
      await kill9(service);
      await bus.close();
      await nats.stop();
      tmp.remove();
    }
  });
});
