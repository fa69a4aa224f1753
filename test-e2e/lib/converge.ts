/**
 * Waiting for the system to settle, then the exactly-once checks every e2e test ends with.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Catalog } from '@parquetry/lake';
import type { FixtureBatch } from '@parquetry/testkit';
import { expect } from 'vitest';
import {
  apiCandles,
  candleDiffs,
  cliLakeFiles,
  expectedBatchCounts,
  expectedTickStats,
  localCopies,
  openDuck,
  oracleCandles,
  parquetBatchCounts,
  parquetCandleKeys,
  parquetCandles,
  parquetTickStats,
  pgBatchCounts,
  pgCandleKeys,
  pgFileDiff,
  pgTickStats,
  TIMEFRAME_MS,
  TIMEFRAMES,
} from './checks.js';
import type { Tick } from './feeds.js';
import { sleep, waitFor } from './procs.js';
import type { System } from './system.js';

export interface Progress {
  lake: { products: number; ticks: number; candles: number };
  pg: { products: number; ticks: number; candles: number };
}

const sumRows = async (catalog: Catalog, dataset: string) =>
  (await catalog.liveFiles(dataset)).reduce((n, f) => n + f.rows, 0);

/** Distinct candle keys the ticks make (all timeframes), without the sentinels' buckets. */
export function expectedCandleKeys(ticks: readonly Tick[], lastRealTs: number): number {
  const keys = new Set<string>();
  for (const t of ticks) {
    if (t.ts > lastRealTs) continue;
    for (const tf of TIMEFRAMES) keys.add(`${t.symbol}/${tf}/${Math.floor(t.ts / TIMEFRAME_MS[tf])}`);
  }
  return keys.size;
}

/**
 * Until the lake holds exactly the expected products and ticks and at least `candleKeys`
 * candle rows, PostgreSQL mirrors all three, and the candle instances hold nothing pending.
 * PostgreSQL is read only when the lake is complete (cheap polling).
 */
export async function waitForEverything(o: {
  catalog: Catalog;
  databaseUrl?: string;
  expected: { products: number; ticks: number; candleKeys?: number };
  system: System;
  timeoutMs?: number;
}): Promise<{ at: number; progress: Progress }> {
  let last: Progress | undefined;
  const progress = await waitFor(
    'the lake and PostgreSQL to hold every input',
    async () => {
      const lake = {
        products: await sumRows(o.catalog, 'products'),
        ticks: await sumRows(o.catalog, 'ticks'),
        candles: o.expected.candleKeys === undefined ? 0 : await sumRows(o.catalog, 'candles'),
      };
      last = { lake, pg: last?.pg ?? { products: 0, ticks: 0, candles: 0 } };
      if (lake.products !== o.expected.products || lake.ticks !== o.expected.ticks) return undefined;
      if (o.expected.candleKeys !== undefined) {
        if (lake.candles < o.expected.candleKeys) return undefined;
        for (const p of o.system.of('candle-aggregator')) {
          const h = await p.getJson<{ pending_candles?: number; pending_publishes?: number }>('/health');
          if (h?.pending_candles !== 0 || h?.pending_publishes !== 0) return undefined;
        }
      }
      if (!o.databaseUrl) return last;
      const pg = {
        products: Object.values(await pgBatchCounts(o.databaseUrl)).reduce((a, b) => a + b, 0),
        ticks: (await pgTickStats(o.databaseUrl)).rows,
        candles: o.expected.candleKeys === undefined ? 0 : (await pgCandleKeys(o.databaseUrl)).rows,
      };
      last = { lake, pg };
      return pg.products === lake.products && pg.ticks === lake.ticks && pg.candles === lake.candles
        ? last
        : undefined;
    },
    o.timeoutMs ?? 90_000,
    500,
  ).catch(async (err: Error) => {
    const diffs: string[] = [];
    if (o.databaseUrl) {
      for (const dataset of ['products', 'ticks', 'candles']) {
        const d = await pgFileDiff(o.databaseUrl, dataset, await o.catalog.liveFiles(dataset)).catch(
          (e: Error) => [`${dataset}: ${e.message}`],
        );
        diffs.push(
          ...d.slice(0, 10).map((x) => `  ${dataset} ${x}`),
          ...(d.length > 10 ? [`  … ${d.length} in all`] : []),
        );
      }
    }
    throw new Error(`${err.message}; last seen ${JSON.stringify(last)}\n${diffs.join('\n')}`);
  });
  return { at: Date.now(), progress };
}

export interface ExactCounts {
  lakeProducts: number;
  lakeTicks: number;
  candles: number;
  apiCandles: number;
  pgProducts: number;
  pgTicks: number;
  pgCandles: number;
  exportRows: number;
}

/**
 * Products (per batch id), ticks (count, distinct ids, volume per symbol) and candles (value for
 * value against the SQL oracle) in the lake's current snapshot (`parquetry lake files --json`),
 * in PostgreSQL, over `GET /v1/candles`, and in a products export downloaded through its signed
 * URL. Any loss or duplicate changes a count.
 */
export async function expectExactlyOnce(o: {
  system: System;
  databaseUrl?: string;
  batches: readonly FixtureBatch[];
  ticks: readonly Tick[];
  symbols?: readonly string[];
  lastRealTs?: number;
  exportDir?: string;
}): Promise<ExactCounts> {
  const duck = await openDuck();
  const env = o.system.cliEnv;
  try {
    const counts: ExactCounts = {
      lakeProducts: 0,
      lakeTicks: 0,
      candles: 0,
      apiCandles: 0,
      pgProducts: 0,
      pgTicks: 0,
      pgCandles: 0,
      exportRows: 0,
    };
    const wantBatches = expectedBatchCounts(o.batches);
    const wantTicks = expectedTickStats(o.ticks);

    const productFiles = await localCopies(cliLakeFiles('products', env), env);
    const lakeBatches = await parquetBatchCounts(duck, productFiles);
    expect(lakeBatches).toEqual(wantBatches);
    counts.lakeProducts = Object.values(lakeBatches).reduce((a, b) => a + b, 0);

    const tickFiles = await localCopies(cliLakeFiles('ticks', env), env);
    const lakeTicks = await parquetTickStats(duck, tickFiles);
    expect(lakeTicks).toEqual(wantTicks);
    counts.lakeTicks = lakeTicks.rows;

    let candleRows: { rows: number; keys: number } | undefined;
    if (o.symbols && o.lastRealTs !== undefined) {
      const lastRealTs = o.lastRealTs;
      const oracle = await oracleCandles(duck, o.symbols);
      const candleFiles = await localCopies(cliLakeFiles('candles', env), env);
      const lake = (await parquetCandles(duck, candleFiles)).filter((c) => c.ts <= lastRealTs);
      expect(candleDiffs(lake, oracle)).toEqual([]);
      counts.candles = lake.length;
      candleRows = await parquetCandleKeys(duck, candleFiles);

      const apis = o.system.of('export-api');
      if (apis.length > 0) {
        const fromApi = [];
        let i = 0;
        for (const symbol of o.symbols) {
          for (const tf of TIMEFRAMES) {
            const start = Math.min(...oracle.filter((c) => c.timeframe === tf).map((c) => c.ts));
            const api = apis[i++ % apis.length]!;
            fromApi.push(
              ...(await apiCandles(api.url, o.system.apiKey, {
                symbol,
                timeframe: tf,
                start,
                end: lastRealTs + 1,
              })),
            );
          }
        }
        expect(candleDiffs(fromApi, oracle)).toEqual([]);
        counts.apiCandles = fromApi.length;
      }
    }

    if (o.databaseUrl) {
      const pgBatches = await pgBatchCounts(o.databaseUrl);
      expect(pgBatches).toEqual(wantBatches);
      counts.pgProducts = Object.values(pgBatches).reduce((a, b) => a + b, 0);
      const pgTicks = await pgTickStats(o.databaseUrl);
      expect(pgTicks).toEqual(wantTicks);
      counts.pgTicks = pgTicks.rows;
      if (candleRows) {
        // PostgreSQL mirrors the lake's candle files row for row (revisions included).
        const pgCandles = await pgCandleKeys(o.databaseUrl);
        expect(pgCandles).toEqual(candleRows);
        counts.pgCandles = pgCandles.rows;
      }
    }

    const api = o.system.of('export-api').at(-1);
    if (api && o.exportDir) {
      const file = join(o.exportDir, 'products-export.parquet');
      writeFileSync(file, await exportProducts(api.url, o.system.apiKey));
      const exported = await parquetBatchCounts(duck, [file]);
      expect(exported).toEqual(wantBatches);
      counts.exportRows = Object.values(exported).reduce((a, b) => a + b, 0);
    }
    return counts;
  } finally {
    duck.close();
  }
}

/** `POST /v1/exports` (products, Parquet), waits for it, downloads it through its signed URL. */
export async function exportProducts(baseUrl: string, key: string): Promise<Buffer> {
  const auth = { authorization: `Bearer ${key}` };
  const r = await fetch(`${baseUrl}/v1/exports`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ dataset: 'products', format: 'parquet' }),
  });
  if (r.status >= 300) throw new Error(`POST /v1/exports: ${r.status} ${await r.text()}`);
  let view = (await r.json()) as { export_id: string; status: string; signed_url: string | null };
  const deadline = Date.now() + 60_000;
  while (view.status !== 'succeeded') {
    if (view.status === 'failed' || Date.now() > deadline) throw new Error(`export: ${JSON.stringify(view)}`);
    await sleep(300);
    const g = await fetch(`${baseUrl}/v1/exports/${view.export_id}`, { headers: auth });
    view = (await g.json()) as typeof view;
  }
  if (!view.signed_url) throw new Error(`export without a single signed URL: ${JSON.stringify(view)}`);
  // The signed URL alone is enough: no API key on the download.
  const d = await fetch(view.signed_url);
  if (!d.ok) throw new Error(`download: ${d.status} ${await d.text()}`);
  return Buffer.from(await d.arrayBuffer());
}
