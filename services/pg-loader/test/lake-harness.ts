/**
 * A real lake for pg-loader's tests: a filesystem store, the catalog on a real NATS server, and
 * tick files written by DuckDB and committed like a writer would (optionally announcing the
 * commit on `lake.committed.ticks`). The lake side of a comparison is computed by DuckDB over
 * the catalog's live files, never by pg-loader.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { type Bus, connectBus, ensureStreams, publishJson, subjects } from '@parquetry/bus';
import {
  type Catalog,
  type FsObjectStore,
  type LakeCommitted,
  type NewFile,
  openCatalog,
  openObjectStore,
} from '@parquetry/lake';
import { silentLogger } from '@parquetry/service';
import { startNats, type TempDir, tempDir } from '@parquetry/testkit';
import type pg from 'pg';
import { type CheckColumn, duckChecksum, duckQuery, pgChecksum } from './helpers.js';

export type Nats = Awaited<ReturnType<typeof startNats>>;

export const TICK_COLUMNS: CheckColumn[] = [
  { source: 'trade_id', target: 'trade_id', kind: 'text' },
  { source: 'symbol', target: 'symbol', kind: 'text' },
  { source: 'date', target: 'date', kind: 'date' },
  { source: 'ts', target: 'ts', kind: 'ts' },
  { source: 'price', target: 'price', kind: 'float' },
  { source: 'size', target: 'size', kind: 'float' },
  { source: 'side', target: 'side', kind: 'text' },
  { source: 'stream_seq', target: 'stream_seq', kind: 'int' },
];

/** Ticks `from` … `from + n - 1` of a symbol on a day, as DuckDB SQL. */
export function tickSelect(symbol: string, date: string, from: number, n: number): string {
  return `SELECT '${symbol}' AS symbol, DATE '${date}' AS date,
    TIMESTAMPTZ '${date} 00:00:00+00' + to_milliseconds(i) AS ts,
    5000 + (i % 1000) * 0.25 AS price, CAST(1 + i % 7 AS DOUBLE) AS size,
    CASE WHEN i % 2 = 0 THEN 'buy' ELSE 'sell' END AS side,
    '${symbol}-${date}-' || i AS trade_id, CAST(i AS BIGINT) AS stream_seq
    FROM range(${from}, ${from + n}) t(i)`;
}

export interface Lake {
  nats: Nats;
  bus: Bus;
  catalog: Catalog;
  store: FsObjectStore;
  dir: TempDir;
  lakeUrl: string;
  /** Absolute path of a lake key. */
  abs(key: string): string;
  /** Write `select`'s rows as the Parquet file `key`; returns its catalog entry. */
  writeFile(key: string, select: string): Promise<NewFile>;
  /** Commit to the catalog; publish the `lake.committed` event unless `publish` is false. */
  commit(
    partition: Record<string, string>,
    add: NewFile[],
    remove?: string[],
    opts?: { publish?: boolean; operation?: LakeCommitted['operation'] },
  ): Promise<LakeCommitted>;
  publish(event: LakeCommitted, msgId?: string): Promise<void>;
  /** The live keys of the ticks dataset. */
  liveKeys(): Promise<string[]>;
  /** DuckDB aggregates over the live files (count 0 when there are none). */
  lakeChecksum(): Promise<Record<string, string | null>>;
  close(): Promise<void>;
}

let commits = 0;

/** `bucket`: a catalog of its own on a shared NATS server (one lake per test). */
export async function startLake(nats?: Nats, opts: { bucket?: string } = {}): Promise<Lake> {
  const server = nats ?? (await startNats());
  const bus = await connectBus({ url: server.url, name: 'pg-loader-test', logger: silentLogger() });
  await ensureStreams(bus.jsm);
  const catalog = await openCatalog({
    nc: bus.nc,
    writerId: 'test',
    ...(opts.bucket ? { bucket: opts.bucket } : {}),
  });
  const dir = tempDir('pgl-lake-');
  const lakeUrl = `file://${dir.path}/lake`;
  const store = openObjectStore(lakeUrl) as FsObjectStore;
  const abs = (key: string) => join(dir.path, 'lake', key);
  const lake: Lake = {
    nats: server,
    bus,
    catalog,
    store,
    dir,
    lakeUrl,
    abs,
    async writeFile(key, select) {
      const path = abs(key);
      mkdirSync(dirname(path), { recursive: true });
      await duckQuery(`COPY (${select}) TO '${path}' (FORMAT parquet)`);
      const [row] = await duckQuery<{ n: bigint }>(`SELECT count(*) AS n FROM read_parquet('${path}')`);
      return {
        path: key,
        rows: Number(row!.n),
        bytes: statSync(path).size,
        sha256: createHash('sha256').update(readFileSync(path)).digest('hex'),
      };
    },
    async commit(partition, add, remove = [], opts = {}) {
      const commitId = `test-${process.pid}-${++commits}-${Date.now().toString(36)}`;
      await catalog.commit({ dataset: 'ticks', commitId, changes: [{ partition, add, remove }] });
      const event: LakeCommitted = {
        dataset: 'ticks',
        commit_id: commitId,
        committed_at: new Date().toISOString(),
        operation: opts.operation ?? (remove.length > 0 ? (add.length > 0 ? 'replace' : 'remove') : 'append'),
        partitions: [
          {
            values: partition,
            added: add.map((f) => ({ path: f.path, rows: f.rows, bytes: f.bytes })),
            removed: remove,
          },
        ],
      };
      if (opts.publish !== false) await lake.publish(event);
      return event;
    },
    async publish(event, msgId = event.commit_id) {
      await publishJson(bus.js, subjects.lakeCommitted(event.dataset), event, { msgId });
    },
    async liveKeys() {
      return (await catalog.liveFiles('ticks')).map((f) => f.path);
    },
    async lakeChecksum() {
      const keys = await lake.liveKeys();
      const reader =
        keys.length === 0
          ? `(${tickSelect('X', '2025-01-01', 0, 0)})`
          : `read_parquet([${keys.map((k) => `'${abs(k)}'`).join(', ')}])`;
      return duckChecksum(reader, TICK_COLUMNS);
    },
    async close() {
      await bus.close();
      await store.close();
      if (!nats) await server.stop();
      dir.remove();
    },
  };
  return lake;
}

export async function tableChecksum(client: pg.ClientBase, table: string) {
  return pgChecksum(client, table, TICK_COLUMNS);
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}
