import { mkdirSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { type Bus, connectBus } from '@parquetry/bus';
import {
  type Catalog,
  type NewFile,
  type ObjectStore,
  openObjectStore,
  type PartitionManifest,
  sha256File,
  sqlString,
} from '@parquetry/lake';
import { silentLogger } from '@parquetry/service';
import { type S3ServerHandle, tempDir } from '@parquetry/testkit';
import type { OpContext } from '../src/engine/context.js';
import { type OpEnvironment, openOpEnvironment } from '../src/engine/open.js';

export type LakeKind = 'fs' | 's3';

export interface Lake {
  kind: LakeKind;
  url: string;
  env: Record<string, string>;
  store: ObjectStore;
  bus: Bus;
  ops: OpEnvironment;
  ctx: OpContext;
  catalog: Catalog;
  conn: DuckDBConnection;
  scratch: string;
  close(): Promise<void>;
}

let seq = 0;

/** A fresh lake (directory, or a prefix on s3rver) with an op context on a real NATS. */
export async function openLake(
  kind: LakeKind,
  natsUrl: string,
  s3?: S3ServerHandle,
  opts: { memoryLimit?: string; writerId?: string; catalogBucket?: string } = {},
): Promise<Lake> {
  const tmp = tempDir('pq-compactor-');
  const url = kind === 'fs' ? `file://${tmp.path}/lake` : s3!.lakeUrl(`c${Date.now().toString(36)}${seq++}`);
  const env = kind === 's3' ? s3!.env : {};
  const store = openObjectStore(url, env, { cacheDir: join(tmp.path, 's3-cache') });
  const bus = await connectBus({ url: natsUrl, name: 'compactor-test', logger: silentLogger() });
  const ops = await openOpEnvironment({
    nc: bus.nc,
    js: bus.js,
    store,
    logger: silentLogger(),
    writerId: opts.writerId ?? `test${seq++}`,
    workDir: join(tmp.path, 'work'),
    memoryLimit: opts.memoryLimit ?? '512MB',
    threads: 2,
    targetFileSizeMb: 128,
    vacuumGraceMinutes: 60,
    allowLocalFiles: true,
    catalogBucket: opts.catalogBucket ?? `cat_${Date.now().toString(36)}_${seq++}`,
  });
  const scratch = join(tmp.path, 'scratch');
  mkdirSync(scratch, { recursive: true });
  return {
    kind,
    url,
    env: { LAKE_URL: url, NATS_URL: natsUrl, ...env },
    store,
    bus,
    ops,
    ctx: ops.ctx,
    catalog: ops.catalog,
    conn: ops.duck.conn,
    scratch,
    async close() {
      ops.close();
      await bus.close();
      await store.close();
      tmp.remove();
    },
  };
}

let fileSeq = 0;

/**
 * Writes one ticks file of `rows` rows for (symbol, date) with DuckDB, uploads and commits it.
 * Values are a deterministic function of (`seed`, row), so two seeds never share a trade_id.
 */
export async function addTicksFile(
  lake: Lake,
  symbol: string,
  date: string,
  rows: number,
  seed: number,
): Promise<NewFile> {
  const local = join(lake.scratch, `seed-${fileSeq++}.parquet`);
  await lake.conn.run(
    `COPY (SELECT ${sqlString(symbol)} AS symbol, DATE ${sqlString(date)} AS date,
       TIMESTAMPTZ ${sqlString(`${date} 00:00:00+00`)} + to_milliseconds(${seed} * 1000 + i) AS ts,
       (5000 + ((i * 7 + ${seed}) % 400) * 0.25)::DOUBLE AS price,
       ((i + ${seed}) % 9 + 1)::DOUBLE AS size,
       CASE WHEN (i + ${seed}) % 3 = 0 THEN NULL WHEN i % 2 = 0 THEN 'buy' ELSE 'sell' END AS side,
       's${seed}-' || i AS trade_id,
       (${seed}::BIGINT * 1000000 + i)::BIGINT AS stream_seq
     FROM range(${rows}) t(i)) TO ${sqlString(local)} (FORMAT parquet, COMPRESSION snappy)`,
  );
  const key = `ticks/symbol=${symbol}/date=${date}/seed_${seed}_${fileSeq}.parquet`;
  const file: NewFile = { path: key, rows, bytes: (await stat(local)).size, sha256: await sha256File(local) };
  await lake.store.putFile(key, local, { move: true });
  await lake.catalog.commit({
    dataset: 'ticks',
    commitId: `seed-${seed}-${fileSeq}`,
    changes: [{ partition: { symbol, date }, add: [file] }],
  });
  return file;
}

/** Local copies of the live files of a dataset (downloaded on S3). */
export async function livePaths(lake: Lake, dataset: string): Promise<string[]> {
  const files = await lake.catalog.liveFiles(dataset);
  return Promise.all(files.map((f) => lake.store.localPath(f.path)));
}

/** Count and sum of a column over the live snapshot, as a reader would compute them. */
export async function snapshotTotals(lake: Lake, dataset: string, column: string, conn = lake.conn) {
  const paths = await livePaths(lake, dataset);
  if (paths.length === 0) return { rows: 0, sum: 0 };
  const r = await conn.runAndReadAll(
    `SELECT count(*)::BIGINT AS n, coalesce(sum("${column}"), 0)::DOUBLE AS s FROM read_parquet([${paths.map(sqlString).join(', ')}], union_by_name = true)`,
  );
  const [row] = r.getRowObjectsJS() as { n: bigint; s: number }[];
  return { rows: Number(row!.n), sum: row!.s };
}

/** Materializes the live snapshot into a DuckDB table (the "copy" the reference SQL runs on). */
export async function snapshotTable(lake: Lake, dataset: string, table: string): Promise<void> {
  const paths = await livePaths(lake, dataset);
  await lake.conn.run(`DROP TABLE IF EXISTS "${table}"`);
  await lake.conn.run(
    `CREATE TABLE "${table}" AS SELECT * FROM read_parquet([${paths.map(sqlString).join(', ')}], union_by_name = true)`,
  );
}

/** Rows in one and not the other (multiset difference both ways, columns matched by name); 0 means equal. */
export async function tableDiff(conn: DuckDBConnection, a: string, b: string): Promise<number> {
  const cols = (await conn.runAndReadAll(`DESCRIBE "${a}"`))
    .getRowObjectsJS()
    .map((r) => `"${String(r.column_name)}"`);
  const sel = (t: string) => `SELECT ${cols.join(', ')} FROM "${t}"`;
  const r = await conn.runAndReadAll(
    `SELECT (SELECT count(*) FROM (${sel(a)} EXCEPT ALL ${sel(b)})) + (SELECT count(*) FROM (${sel(b)} EXCEPT ALL ${sel(a)})) AS d`,
  );
  return Number((r.getRowObjectsJS()[0] as { d: bigint }).d);
}

/** Every object key under a prefix, sorted. */
export async function listKeys(store: ObjectStore, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.key);
  return out.sort();
}

/** Manifests as comparable JSON (revisions included): equal means the catalog did not change. */
export async function catalogState(catalog: Catalog, dataset: string): Promise<string> {
  const ms: PartitionManifest[] = await catalog.storedPartitions(dataset);
  return JSON.stringify(ms.map((m) => [m.partition, m.revision, m.files.map((f) => f.path)]).sort());
}

/**
 * A reader running beside an operation: over and over, take the catalog's live files, read them
 * (through its own store and DuckDB connection, as an outside reader would) and record the
 * row count and a column's sum. `stop()` returns every observation.
 */
export async function startReader(lake: Lake, dataset: string, column: string) {
  const conn = await lake.ops.duck.connect();
  const tmp = tempDir('pq-reader-');
  const store = openObjectStore(lake.url, lake.env, { cacheDir: tmp.path });
  const seen: { rows: number; sum: number }[] = [];
  /** Stop once the reader has this many observations (set by stop(): one more after the op). */
  let until = Number.POSITIVE_INFINITY;
  const observe = async () => {
    const files = await lake.catalog.liveFiles(dataset);
    const paths = await Promise.all(files.map((f) => store.localPath(f.path)));
    if (paths.length === 0) {
      seen.push({ rows: 0, sum: 0 });
      return;
    }
    const r = await conn.runAndReadAll(
      `SELECT count(*)::BIGINT AS n, coalesce(sum("${column}"), 0)::DOUBLE AS s FROM read_parquet([${paths.map(sqlString).join(', ')}], union_by_name = true)`,
    );
    const [row] = r.getRowObjectsJS() as { n: bigint; s: number }[];
    seen.push({ rows: Number(row!.n), sum: row!.s });
  };
  // One observation of the state before the operation, before the caller starts it.
  await observe();
  let failure: unknown;
  const loop = (async () => {
    try {
      while (seen.length < until) {
        await observe();
        await new Promise((r) => setTimeout(r, 2));
      }
    } catch (err) {
      failure = err;
    }
  })();
  return {
    /** Ends after one more full observation (the state after the operation). */
    async stop() {
      until = seen.length + 1;
      await loop;
      await store.close();
      tmp.remove();
      if (failure) throw failure;
      return seen;
    },
  };
}

export const sameTotals = (a: { rows: number; sum: number }, b: { rows: number; sum: number }) =>
  a.rows === b.rows && Math.abs(a.sum - b.sum) < 1e-6 * Math.max(1, Math.abs(a.sum));
