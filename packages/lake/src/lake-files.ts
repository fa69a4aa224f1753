import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { NewFile } from './catalog/types.js';
import {
  type ParquetColumn,
  type ParquetCompression,
  type RowBatch,
  writeParquet,
} from './parquet/writer.js';
import type { ObjectStore } from './store/types.js';

export interface WriteLakeFilesOptions {
  conn: DuckDBConnection;
  store: ObjectStore;
  /** Directory key of the partition, e.g. `products/retailer=x/date=2025-09-03`. */
  dir: string;
  /** File name for part n (1-based) of `parts`; `parts` is 1 unless the output was split. */
  fileName: (part: number, parts: number) => string;
  columns: readonly ParquetColumn[];
  /** Row batches (with optional shared values, see RowBatch). */
  batches: readonly RowBatch[];
  compression?: ParquetCompression;
  /** Split output above this many bytes into several files (the seed's max_file_size_mb). */
  maxFileBytes?: number;
  /** Min/max of this field (epoch ms or ISO), recorded for time pruning. */
  timeField?: string;
  tempDir?: string;
}

const rowsOf = (b: RowBatch) => (Array.isArray(b) ? b : b.rows);
const countRows = (batches: readonly RowBatch[]) => batches.reduce((n, b) => n + rowsOf(b).length, 0);

/** Cut batches into `parts` runs of about equal row counts (splitting a batch where needed). */
function splitBatches(batches: readonly RowBatch[], parts: number): RowBatch[][] {
  const per = Math.ceil(countRows(batches) / parts);
  const out: RowBatch[][] = [[]];
  let room = per;
  for (const b of batches) {
    const rows = rowsOf(b);
    for (let i = 0; i < rows.length; ) {
      if (room === 0) {
        out.push([]);
        room = per;
      }
      const take = rows.slice(i, i + room);
      out[out.length - 1]!.push(Array.isArray(b) ? take : { rows: take, shared: b.shared });
      i += take.length;
      room -= take.length;
    }
  }
  return out;
}

function timeRange(batches: readonly RowBatch[], field: string) {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const r of batches.flatMap(rowsOf)) {
    const v = r[field];
    const ms = typeof v === 'number' ? v : typeof v === 'string' ? Date.parse(v) : Number.NaN;
    if (Number.isFinite(ms)) {
      if (ms < min) min = ms;
      if (ms > max) max = ms;
    }
  }
  return Number.isFinite(min)
    ? { minTime: new Date(min).toISOString(), maxTime: new Date(max).toISOString() }
    : {};
}

/** Where lake writers stage local files (Parquet outputs, NDJSON inputs, spills) by default. */
export const LAKE_WRITE_TEMP_DIR = join(tmpdir(), 'parquetry-write');

/**
 * Writes rows of one partition as Parquet files in the object store: local temp file first,
 * then an atomic upload. Output larger than `maxFileBytes` is rewritten as evenly sized parts
 * (the size is only known after compression, and splitting is rare, so one trial write is the
 * cheap way). Returns catalog entries, ready to commit; nothing is visible before the commit.
 */
export async function writeLakeFiles(opts: WriteLakeFilesOptions): Promise<NewFile[]> {
  const tmp = opts.tempDir ?? LAKE_WRITE_TEMP_DIR;
  mkdirSync(tmp, { recursive: true });
  const write = async (batches: readonly RowBatch[]) => {
    const path = join(tmp, `${randomBytes(8).toString('hex')}.parquet`);
    const result = await writeParquet({
      conn: opts.conn,
      path,
      columns: opts.columns,
      rows: batches,
      compression: opts.compression,
    });
    return { path, slice: batches, ...result };
  };

  let outputs = [await write(opts.batches)];
  const max = opts.maxFileBytes;
  const total = countRows(opts.batches);
  if (max !== undefined && outputs[0]!.bytes > max && total > 1) {
    const parts = Math.min(total, Math.ceil(outputs[0]!.bytes / (max * 0.9)));
    await unlink(outputs[0]!.path).catch(() => {});
    outputs = [];
    for (const part of splitBatches(opts.batches, parts)) outputs.push(await write(part));
  }

  try {
    return await putLakeFiles(opts.store, opts.dir, opts.fileName, outputs, (out) =>
      opts.timeField ? timeRange(out.slice, opts.timeField) : {},
    );
  } finally {
    await Promise.all(outputs.map((o) => unlink(o.path).catch(() => {})));
  }
}

/** A finished local Parquet file, ready to move into the store. */
export interface LocalLakeFile {
  path: string;
  rows: number;
  bytes: number;
  sha256: string;
}

/**
 * Moves finished local files into the store as `<dir>/<fileName(i, n)>` and returns their
 * catalog entries. A failure part-way removes the parts already put: a failed write leaves no
 * file behind that no commit will ever name.
 */
export async function putLakeFiles<T extends LocalLakeFile>(
  store: ObjectStore,
  dir: string,
  fileName: (part: number, parts: number) => string,
  outputs: readonly T[],
  extra: (out: T) => Partial<NewFile> = () => ({}),
): Promise<NewFile[]> {
  const files: NewFile[] = [];
  try {
    for (const [i, out] of outputs.entries()) {
      const key = `${dir}/${fileName(i + 1, outputs.length)}`;
      await store.putFile(key, out.path, { move: true });
      files.push({ path: key, rows: out.rows, bytes: out.bytes, sha256: out.sha256, ...extra(out) });
    }
  } catch (err) {
    await discardLakeFiles(store, files);
    throw err;
  }
  return files;
}

/**
 * Best-effort removal of files written for a commit that was never attempted (a later write of
 * the same flush failed). Only for that case: after a commit was tried its outcome may be unknown
 * (a lost reply), and its files are left to the catalog's reconcile and sweep.
 */
export async function discardLakeFiles(
  store: ObjectStore,
  files: readonly { path: string }[],
): Promise<void> {
  await Promise.all(files.map((f) => store.delete(f.path).catch(() => {})));
}
