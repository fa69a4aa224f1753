import { randomBytes } from 'node:crypto';
import { extname, join } from 'node:path';
import {
  assertValidKey,
  type FileEntry,
  getDataset,
  type ParamList,
  type PartitionManifest,
  type PartitionValues,
  partitionPath,
  sqlIdent,
  sqlString,
} from '@parquetry/lake';
import { InvalidInputError } from '@parquetry/service';
import { fileSizeLimit, MB } from '../domain/compact-plan.js';
import { compilePartitionFilter } from '../domain/partition-filter.js';
import type { OpContext } from '../engine/context.js';
import { copyToDir, describe, parquetSource, queryRows, runSql, type StagedFile } from '../engine/duck.js';
import type { PlannedPartition, RewritePlan } from '../engine/execute.js';
import { datasetSchema } from '../engine/schema.js';
import { LocalFiles } from '../engine/sources.js';
import type { UpsertJob } from '../jobs.js';

const FILE_COL = '__pq_file';
const ROW_COL = '__pq_row';
const partCol = (i: number) => `__pq_p${i}`;

export type UpsertFormat = 'parquet' | 'csv' | 'ndjson';

function invalid(path: string, message: string, details?: Record<string, unknown>): never {
  throw new InvalidInputError(`${path}: ${message}`, {
    code: 'invalid_upsert',
    details: { path, ...details },
  });
}

export function formatOf(name: string, explicit?: UpsertFormat): UpsertFormat {
  if (explicit) return explicit;
  const ext = extname(name).toLowerCase();
  if (ext === '.parquet') return 'parquet';
  if (ext === '.csv') return 'csv';
  if (ext === '.ndjson' || ext === '.jsonl' || ext === '.json') return 'ndjson';
  return invalid(
    'format',
    `cannot tell the format of ${JSON.stringify(name)}; give format parquet, csv or ndjson`,
  );
}

/** A relation over the new rows, by format; the path is a quoted string literal, never SQL. */
export function sourceRelation(path: string, format: UpsertFormat): string {
  switch (format) {
    case 'parquet':
      return `read_parquet(${sqlString(path)})`;
    case 'csv':
      return `read_csv(${sqlString(path)}, header = true)`;
    case 'ndjson':
      return `read_json(${sqlString(path)}, format = 'newline_delimited')`;
  }
}

/**
 * Upsert: rows of a Parquet, CSV or NDJSON file are matched to the dataset's rows by their
 * partition columns plus `key_columns`. A matched row gets the file's values in
 * `update_columns` (default: every column of the file except keys and partition columns); a
 * row without a match is inserted. Only files holding a matched key are rewritten (one
 * streaming COPY per partition); inserts into a partition without matches go into one new file.
 * Keys must be unique and non-null in the file, so the result never depends on row order.
 */
export async function planUpsert(ctx: OpContext, job: UpsertJob, opId: string): Promise<RewritePlan> {
  const def = getDataset(job.dataset);
  const match = compilePartitionFilter(def, job.partitions);
  const targetBytes = (job.target_file_size_mb ?? ctx.defaults.targetFileSizeMb) * MB;

  let sourcePath: string;
  let sourceName: string;
  if ('key' in job.source) {
    assertValidKey(job.source.key);
    sourceName = job.source.key;
    if (!(await ctx.store.head(job.source.key)))
      invalid('source.key', `no object ${JSON.stringify(job.source.key)} in the lake`);
    sourcePath = await ctx.store.localPath(job.source.key);
  } else {
    if (!ctx.allowLocalFiles)
      invalid('source.path', 'local files are for the CLI; a job names an object of the lake (source.key)');
    sourceName = job.source.path;
    sourcePath = job.source.path;
  }
  const format = formatOf(sourceName, job.format);

  const table = `__pq_up_${randomBytes(6).toString('hex')}`;
  const matchTable = `${table}_m`;
  const local = new LocalFiles(ctx.store);
  const release = async () => {
    await ctx.conn.run(`DROP TABLE IF EXISTS ${sqlIdent(table)}`).catch(() => {});
    await ctx.conn.run(`DROP TABLE IF EXISTS ${sqlIdent(matchTable)}`).catch(() => {});
    await local.release();
  };

  try {
    let incoming: Awaited<ReturnType<typeof describe>>;
    try {
      incoming = await describe(ctx.conn, sourceRelation(sourcePath, format));
    } catch (err) {
      throw new InvalidInputError(
        `source: cannot read ${JSON.stringify(sourceName)} as ${format}: ${(err as Error).message}`,
        {
          code: 'invalid_upsert',
          cause: err,
        },
      );
    }
    const incomingNames = new Set(incoming.map((c) => c.name));

    const snapshot = await ctx.catalog.partitions(def.name);
    const selected = snapshot.filter((m) => match(m.partition));
    const allFiles = selected.flatMap((m) => m.files);
    const allPaths = await local.resolve(allFiles);
    const schema = await datasetSchema(ctx.conn, def, allPaths);

    for (const c of incoming) {
      if (!schema.storage.has(c.name) && !def.openSchema) {
        invalid('source', `column ${JSON.stringify(c.name)} is not a column of ${def.name}`, {
          valid: [...schema.storage.keys()],
        });
      }
    }
    for (const c of def.partitionColumns) {
      if (!incomingNames.has(c))
        invalid('source', `the file must carry partition column ${JSON.stringify(c)}`);
    }
    const keyCols = [...new Set(job.key_columns)];
    for (const [i, k] of keyCols.entries()) {
      if (!incomingNames.has(k))
        invalid(`key_columns.${i}`, `column ${JSON.stringify(k)} is not in the file`);
      if (!schema.storage.has(k) && allPaths.length > 0)
        invalid(`key_columns.${i}`, `column ${JSON.stringify(k)} is not in ${def.name}`);
    }
    const joinCols = [...new Set([...def.partitionColumns, ...keyCols])];
    const updateCols = job.update_columns ?? incoming.map((c) => c.name).filter((c) => !joinCols.includes(c));
    for (const [i, c] of updateCols.entries()) {
      if (!incomingNames.has(c))
        invalid(`update_columns.${i}`, `column ${JSON.stringify(c)} is not in the file`);
      if (joinCols.includes(c))
        invalid(`update_columns.${i}`, `${JSON.stringify(c)} is a key or partition column`);
    }

    // The new rows, cast to the dataset's storage types, numbered, with partition values as text.
    const casts = incoming.map((c) => {
      const storage = schema.storage.get(c.name);
      return storage ? `CAST(${sqlIdent(c.name)} AS ${storage}) AS ${sqlIdent(c.name)}` : sqlIdent(c.name);
    });
    const parts = def.partitionColumns.map(
      (c, i) => `CAST(${sqlIdent(c)} AS VARCHAR) AS ${sqlIdent(partCol(i))}`,
    );
    try {
      await runSql(
        ctx.conn,
        `CREATE TEMP TABLE ${sqlIdent(table)} AS SELECT *, row_number() OVER () AS ${sqlIdent(ROW_COL)}, ${parts.join(', ')} FROM (SELECT ${casts.join(', ')} FROM ${sourceRelation(sourcePath, format)})`,
      );
    } catch (err) {
      throw new InvalidInputError(
        `source: values of ${JSON.stringify(sourceName)} do not fit ${def.name}: ${(err as Error).message}`,
        {
          code: 'invalid_upsert',
          cause: err,
        },
      );
    }
    const T = sqlIdent(table);

    const nullKeys = await queryRows(
      ctx.conn,
      `SELECT count(*)::BIGINT AS n FROM ${T} WHERE ${joinCols.map((c) => `${sqlIdent(c)} IS NULL`).join(' OR ')}`,
    );
    if (Number(nullKeys[0]?.n ?? 0) > 0) {
      invalid(
        'source',
        `${nullKeys[0]?.n} rows have a NULL key or partition column (${joinCols.join(', ')})`,
      );
    }
    const dup = await queryRows(
      ctx.conn,
      `SELECT ${joinCols.map(sqlIdent).join(', ')}, count(*)::BIGINT AS n FROM ${T} GROUP BY ALL HAVING count(*) > 1 LIMIT 1`,
    );
    if (dup.length > 0) {
      invalid('key_columns', 'the file holds the same key more than once; an upsert needs one row per key', {
        example: Object.fromEntries(joinCols.map((c) => [c, String(dup[0]![c])])),
      });
    }

    // Which partitions the new rows fall in (only those the partition filter selects).
    const groups = await queryRows(
      ctx.conn,
      `SELECT ${def.partitionColumns.map((_, i) => sqlIdent(partCol(i))).join(', ')}, count(*)::BIGINT AS n FROM ${T} GROUP BY ALL`,
    );
    let skipped = 0;
    const targets: { values: PartitionValues; rows: number }[] = [];
    for (const g of groups) {
      const values: PartitionValues = Object.fromEntries(
        def.partitionColumns.map((c, i) => [c, String(g[partCol(i)])]),
      );
      if (!match(values)) {
        skipped += Number(g.n);
        continue;
      }
      partitionPath(def.partitionColumns, values);
      targets.push({ values, rows: Number(g.n) });
    }

    // One scan of the key columns of the target partitions' files: which existing rows match.
    const byPath = new Map(snapshot.map((m) => [partitionPath(def.partitionColumns, m.partition), m]));
    const targetFiles: FileEntry[] = targets.flatMap(
      (t) => byPath.get(partitionPath(def.partitionColumns, t.values))?.files ?? [],
    );
    const targetLocal = await local.resolve(targetFiles);
    const fileOf = new Map(targetFiles.map((f, i) => [targetLocal[i]!, f]));
    const perFile = new Map<string, number>();
    const matchedRows = new Set<number>();
    if (targetLocal.length > 0) {
      const on = joinCols.map((c) => `t.${sqlIdent(c)} = u.${sqlIdent(c)}`).join(' AND ');
      await runSql(
        ctx.conn,
        `CREATE TEMP TABLE ${sqlIdent(matchTable)} AS SELECT t.${sqlIdent(FILE_COL)} AS f, u.${sqlIdent(ROW_COL)} AS r FROM (SELECT ${joinCols.map(sqlIdent).join(', ')}, ${sqlIdent(FILE_COL)} FROM ${parquetSource(targetLocal, { filename: FILE_COL })}) t JOIN ${T} u ON ${on}`,
      );
      for (const r of await queryRows(
        ctx.conn,
        `SELECT f, count(*)::BIGINT AS n FROM ${sqlIdent(matchTable)} GROUP BY 1`,
      )) {
        perFile.set(String(r.f), Number(r.n));
      }
      for (const r of await queryRows(ctx.conn, `SELECT DISTINCT r FROM ${sqlIdent(matchTable)}`))
        matchedRows.add(Number(r.r));
    }
    const insertedBy = await queryRows(
      ctx.conn,
      `SELECT ${def.partitionColumns.map((_, i) => sqlIdent(partCol(i))).join(', ')}, count(*)::BIGINT AS n FROM ${T} WHERE ${sqlIdent(ROW_COL)} NOT IN (SELECT r FROM ${targetLocal.length > 0 ? sqlIdent(matchTable) : `(SELECT NULL::BIGINT AS r WHERE false)`}) GROUP BY ALL`,
    );
    const inserted = new Map(
      insertedBy.map((r) => [
        partitionPath(
          def.partitionColumns,
          Object.fromEntries(def.partitionColumns.map((c, i) => [c, String(r[partCol(i)])])),
        ),
        Number(r.n),
      ]),
    );

    const work: { plan: PlannedPartition; files: FileEntry[]; values: PartitionValues }[] = [];
    for (const t of targets) {
      const path = partitionPath(def.partitionColumns, t.values);
      const m: PartitionManifest | undefined = byPath.get(path);
      const live = m?.files ?? [];
      const localOf = new Map([...fileOf.entries()].map(([l, f]) => [f.path, l]));
      const remove = live.filter((f) => (perFile.get(localOf.get(f.path) ?? '') ?? 0) > 0);
      const rowsUpdated = remove.reduce((n, f) => n + (perFile.get(localOf.get(f.path) ?? '') ?? 0), 0);
      const rowsInserted = inserted.get(path) ?? 0;
      if (remove.length === 0 && rowsInserted === 0) continue;
      const removedRows = remove.reduce((n, f) => n + f.rows, 0);
      const removedBytes = remove.reduce((n, f) => n + f.bytes, 0);
      const perRow = removedRows > 0 ? removedBytes / removedRows : 64;
      const expectedRows = removedRows + rowsInserted;
      const estBytes = Math.round(removedBytes + rowsInserted * perRow);
      work.push({
        files: remove,
        values: t.values,
        plan: {
          values: t.values,
          path,
          live,
          remove,
          expectedRows,
          estimate: { files: Math.max(1, Math.ceil(estBytes / targetBytes)), bytes: estBytes },
          rowsUpdated,
          rowsInserted,
        },
      });
    }

    const matchedCount = matchedRows.size;
    return {
      op: 'upsert',
      opId,
      def,
      partitions: work.map((w) => w.plan),
      details: {
        source: sourceName,
        format,
        key_columns: keyCols,
        update_columns: updateCols,
        rows_in_source: groups.reduce((n, g) => n + Number(g.n), 0),
        rows_skipped_by_partition_filter: skipped,
        source_rows_matched: matchedCount,
      },
      async write(stage) {
        const out = new Map<string, StagedFile[]>();
        for (const [i, w] of work.entries()) {
          const params: ParamList = { params: [], types: [] };
          const inPart = def.partitionColumns
            .map((c, j) => {
              params.params.push(w.values[c]!);
              params.types.push('VARCHAR');
              return `u.${sqlIdent(partCol(j))} = $${params.params.length}`;
            })
            .join(' AND ');
          const helper = [ROW_COL, ...def.partitionColumns.map((_, j) => partCol(j))]
            .map(sqlIdent)
            .join(', ');
          const newRows = `(SELECT * FROM ${T} u WHERE ${inPart})`;
          const insertSql = `SELECT u.* EXCLUDE (${helper}) FROM ${newRows} u WHERE u.${sqlIdent(ROW_COL)} NOT IN (SELECT r FROM ${targetLocal.length > 0 ? sqlIdent(matchTable) : `(SELECT NULL::BIGINT AS r WHERE false)`})`;
          let select = insertSql;
          if (w.files.length > 0) {
            const paths = await local.resolve(w.files);
            const present = new Set((await describe(ctx.conn, parquetSource(paths))).map((c) => c.name));
            const on = joinCols.map((c) => `t.${sqlIdent(c)} = u.${sqlIdent(c)}`).join(' AND ');
            const matched = `u.${sqlIdent(ROW_COL)} IS NOT NULL`;
            const replace = updateCols
              .filter((c) => present.has(c))
              .map(
                (c) =>
                  `CASE WHEN ${matched} THEN u.${sqlIdent(c)} ELSE t.${sqlIdent(c)} END AS ${sqlIdent(c)}`,
              );
            const added = updateCols
              .filter((c) => !present.has(c))
              .map((c) => `CASE WHEN ${matched} THEN u.${sqlIdent(c)} END AS ${sqlIdent(c)}`);
            const existing = `SELECT t.*${replace.length ? ` REPLACE (${replace.join(', ')})` : ''}${added.length ? `, ${added.join(', ')}` : ''} FROM ${parquetSource(paths)} t LEFT JOIN ${newRows} u ON ${on}`;
            select = `${existing} UNION ALL BY NAME ${insertSql}`;
          }
          const { files } = await copyToDir(ctx.conn, select, params, join(stage, String(i)), {
            fileSizeBytes: fileSizeLimit(w.plan.estimate.bytes, w.plan.estimate.files),
          });
          out.set(w.plan.path, files);
          ctx.heartbeat?.();
        }
        return out;
      },
      release,
    };
  } catch (err) {
    await release();
    throw err;
  }
}
