import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type CompiledAssignment,
  compileAssignment,
  getDataset,
  type ParamList,
  type PartitionValues,
  parseExpressionInput,
  partitionPath,
  sqlIdent,
  sqlString,
} from '@parquetry/lake';
import { InvalidInputError } from '@parquetry/service';
import { fileSizeLimit, MB } from '../domain/compact-plan.js';
import { compilePartitionFilter } from '../domain/partition-filter.js';
import type { OpContext } from '../engine/context.js';
import {
  copyToDir,
  emptyParams,
  parquetSource,
  queryRows,
  runSql,
  type StagedFile,
  stagedFiles,
} from '../engine/duck.js';
import type { PlannedPartition, RewritePlan } from '../engine/execute.js';
import { datasetSchema } from '../engine/schema.js';
import { LocalFiles } from '../engine/sources.js';
import type { RepartitionJob } from '../jobs.js';

const PART_KEY = '__pq_part';

function asExpression(v: unknown): unknown {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : { value: v };
}

/**
 * Repartition: every row of the selected partitions gets new values of the dataset's partition
 * columns from validated expressions over the row (`date(ts)`, `upper(symbol)`, `cast(…)`), and
 * moves to the partition those values name. The plan first counts rows per (old, new) partition
 * — the estimate a dry run reports — then one streaming COPY writes every new partition. One
 * multi-partition commit removes the old files and adds the new ones, so readers see the old
 * layout or the new, never both; the old files stay in the store until vacuum's grace expires.
 * A source partition whose rows all stay where they are is left alone.
 */
export async function planRepartition(
  ctx: OpContext,
  job: RepartitionJob,
  opId: string,
): Promise<RewritePlan> {
  const def = getDataset(job.dataset);
  const match = compilePartitionFilter(def, job.partitions);
  const targetBytes = (job.target_file_size_mb ?? ctx.defaults.targetFileSizeMb) * MB;
  const snapshot = await ctx.catalog.partitions(def.name);
  const sources = snapshot.filter((m) => match(m.partition) && m.files.length > 0);
  const local = new LocalFiles(ctx.store);
  try {
    const files = sources.flatMap((m) => m.files);
    const paths = await local.resolve(files);
    const schema = await datasetSchema(ctx.conn, def, paths);

    const params: ParamList = { params: [], types: [] };
    const assignments: CompiledAssignment[] = [];
    for (const [column, raw] of Object.entries(job.partition_by)) {
      if (!def.partitionColumns.includes(column)) {
        throw new InvalidInputError(
          `partition_by.${column}: not a partition column of ${def.name} (${def.partitionColumns.join(', ')})`,
          { code: 'invalid_expression', details: { valid: def.partitionColumns } },
        );
      }
      const expr = parseExpressionInput(asExpression(raw), `partition_by.${column}`);
      assignments.push(
        compileAssignment({ schema: schema.types, column, expr, params, path: `partition_by.${column}` }),
      );
    }
    if (paths.length === 0) {
      return {
        op: 'repartition',
        opId,
        def,
        partitions: [],
        details: { estimate: [] },
        write: async () => new Map(),
        release: () => local.release(),
      };
    }

    const replace = assignments.map((a) => `${a.sql} AS ${sqlIdent(a.column)}`).join(', ');
    const old = def.partitionColumns.map(
      (c, i) => `CAST(${sqlIdent(c)} AS VARCHAR) AS ${sqlIdent(`__pq_old${i}`)}`,
    );
    const moved = `SELECT * REPLACE (${replace}), ${old.join(', ')} FROM ${parquetSource(paths)}`;
    const newText = def.partitionColumns.map((c) => `CAST(${sqlIdent(c)} AS VARCHAR)`);
    const keyExpr = `md5(concat_ws(chr(31), ${newText.join(', ')}))`;
    const groups = await queryRows(
      ctx.conn,
      `SELECT ${def.partitionColumns.map((c, i) => `${sqlIdent(`__pq_old${i}`)} AS ${sqlIdent(`o${i}`)}, CAST(${sqlIdent(c)} AS VARCHAR) AS ${sqlIdent(`n${i}`)}`).join(', ')}, ${keyExpr} AS k, count(*)::BIGINT AS rows FROM (${moved}) GROUP BY ALL`,
      params,
    );
    const valuesOf = (g: Record<string, unknown>, p: 'o' | 'n'): PartitionValues => {
      const out: PartitionValues = {};
      for (const [i, c] of def.partitionColumns.entries()) {
        const v = g[`${p}${i}`];
        if (v === null || v === undefined) {
          throw new InvalidInputError(
            `partition_by.${c}: the expression yields NULL for ${g.rows} rows; a partition value cannot be NULL`,
            {
              code: 'invalid_expression',
            },
          );
        }
        out[c] = String(v);
      }
      return out;
    };

    // Per source partition: where its rows go.
    const bySource = new Map<string, { to: Map<string, number> }>();
    const target = new Map<string, { values: PartitionValues; key: string; rows: number }>();
    for (const g of groups) {
      const from = partitionPath(def.partitionColumns, valuesOf(g, 'o'));
      const toValues = valuesOf(g, 'n');
      const to = partitionPath(def.partitionColumns, toValues);
      const s = bySource.get(from) ?? { to: new Map() };
      s.to.set(to, (s.to.get(to) ?? 0) + Number(g.rows));
      bySource.set(from, s);
      const t = target.get(to) ?? { values: toValues, key: String(g.k), rows: 0 };
      t.rows += Number(g.rows);
      target.set(to, t);
    }
    // Sources that stay whole where they are need no rewrite.
    const moving = new Set(
      sources
        .map((m) => partitionPath(def.partitionColumns, m.partition))
        .filter((p) => {
          const to = bySource.get(p)?.to;
          return to !== undefined && !(to.size === 1 && to.has(p));
        }),
    );
    const byPath = new Map(snapshot.map((m) => [partitionPath(def.partitionColumns, m.partition), m]));
    const bytesPerRow =
      files.reduce((n, f) => n + f.bytes, 0) /
      Math.max(
        1,
        files.reduce((n, f) => n + f.rows, 0),
      );

    // Rows arriving in each partition from the moving sources.
    const incoming = new Map<string, number>();
    for (const from of moving)
      for (const [to, n] of bySource.get(from)!.to) incoming.set(to, (incoming.get(to) ?? 0) + n);

    const plans: PlannedPartition[] = [];
    for (const path of new Set([...moving, ...incoming.keys()])) {
      const m = byPath.get(path);
      const live = m?.files ?? [];
      const rows = incoming.get(path) ?? 0;
      const est = Math.round(rows * bytesPerRow);
      plans.push({
        values: m?.partition ?? target.get(path)!.values,
        path,
        live,
        remove: moving.has(path) ? live : [],
        expectedRows: rows,
        estimate: { files: rows === 0 ? 0 : Math.max(1, Math.ceil(est / targetBytes)), bytes: est },
      });
    }
    plans.sort((a, b) => (a.path < b.path ? -1 : 1));
    const keyToPath = new Map([...target.entries()].map(([p, t]) => [t.key, p]));
    const sourceFiles = sources
      .filter((m) => moving.has(partitionPath(def.partitionColumns, m.partition)))
      .flatMap((m) => m.files);

    return {
      op: 'repartition',
      opId,
      def,
      partitions: plans,
      details: {
        partition_by: job.partition_by,
        estimate: plans
          .filter((p) => p.expectedRows > 0)
          .map((p) => ({
            partition: p.path,
            rows: p.expectedRows,
            bytes: p.estimate.bytes,
            files: p.estimate.files,
          })),
        unchanged_partitions: sources.length - moving.size,
      },
      async write(stage) {
        const out = new Map<string, StagedFile[]>();
        if (sourceFiles.length === 0) return out;
        const src = await local.resolve(sourceFiles);
        const dir = join(stage, 'repartition');
        await mkdir(dir, { recursive: true });
        // The key is computed over the NEW values, so md5 sees the replaced columns.
        const keyed = `SELECT *, ${keyExpr} AS ${sqlIdent(PART_KEY)} FROM (SELECT * REPLACE (${replace}) FROM ${parquetSource(src)})`;
        // DuckDB cannot combine PARTITION_BY with FILE_SIZE_BYTES: write every new partition in
        // one pass, then split only the outputs larger than the target (rare: a big partition).
        await runSql(
          ctx.conn,
          `COPY (${keyed}) TO ${sqlString(dir)} (FORMAT parquet, COMPRESSION snappy, PARTITION_BY (${sqlIdent(PART_KEY)}), OVERWRITE_OR_IGNORE true)`,
          params,
        );
        for (const [n, name] of (await readdir(dir)).sort().entries()) {
          const key = name.startsWith(`${PART_KEY}=`) ? name.slice(PART_KEY.length + 1) : undefined;
          const path = key === undefined ? undefined : keyToPath.get(key);
          if (path === undefined) {
            throw new InvalidInputError(`repartition wrote an unexpected directory ${name}`, {
              code: 'internal',
            });
          }
          let staged = await stagedFiles(ctx.conn, join(dir, name));
          const bytes = staged.reduce((x, f) => x + f.bytes, 0);
          if (bytes > targetBytes * 1.5) {
            const outputs = Math.ceil(bytes / targetBytes);
            const split = await copyToDir(
              ctx.conn,
              `SELECT * FROM ${parquetSource(staged.map((f) => f.local))}`,
              emptyParams(),
              join(stage, `split-${n}`),
              { fileSizeBytes: fileSizeLimit(bytes, outputs) },
            );
            staged = split.files;
          }
          out.set(path, staged);
        }
        ctx.heartbeat?.();
        return out;
      },
      release: () => local.release(),
    };
  } catch (err) {
    await local.release();
    throw err;
  }
}
