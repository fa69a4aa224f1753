import { join } from 'node:path';
import {
  type CompiledAssignment,
  compileAssignment,
  compileRowPredicate,
  type DatasetDef,
  expressionColumns,
  type FileEntry,
  filtersSchema,
  getDataset,
  type ParamList,
  parseExpressionInput,
  partitionPath,
  sqlIdent,
} from '@parquetry/lake';
import { InvalidInputError } from '@parquetry/service';
import { fileSizeLimit, MB } from '../domain/compact-plan.js';
import { compilePartitionFilter } from '../domain/partition-filter.js';
import type { OpContext } from '../engine/context.js';
import { copyToDir, describe, parquetSource, queryRows, type StagedFile } from '../engine/duck.js';
import type { PlannedPartition, RewritePlan } from '../engine/execute.js';
import { datasetSchema } from '../engine/schema.js';
import { LocalFiles } from '../engine/sources.js';
import type { DeleteJob, UpdateJob } from '../jobs.js';

/** Column DuckDB adds for the source file of each row; `filename` itself may be a product field. */
export const FILE_COLUMN = '__pq_file';

/** A plain JSON value in `set` is a literal; an object is an expression. */
function asExpression(v: unknown): unknown {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : { value: v };
}

interface RowRewrite {
  op: 'delete' | 'update';
  def: DatasetDef;
  /** Boolean SQL; `(pred) IS TRUE` selects the rows the op touches. */
  predicate: string;
  params: ParamList;
  /** How many of `params` the predicate uses (the first ones). */
  predicateParams: number;
  assignments: CompiledAssignment[];
  /** Columns the SQL reads or writes; added as NULL to files that lack them. */
  referenced: Set<string>;
}

/** Within-file counts of matching rows, keyed by the local path DuckDB saw. */
async function countMatches(ctx: OpContext, paths: string[], rw: RowRewrite): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (paths.length === 0) return out;
  const rows = await queryRows(
    ctx.conn,
    `SELECT ${sqlIdent(FILE_COLUMN)} AS f, count(*)::BIGINT AS n FROM ${parquetSource(paths, { filename: FILE_COLUMN })} WHERE (${rw.predicate}) IS TRUE GROUP BY 1`,
    // Only the predicate's own parameters: an update's assignments append theirs after them.
    {
      params: rw.params.params.slice(0, rw.predicateParams),
      types: rw.params.types.slice(0, rw.predicateParams),
    },
  );
  for (const r of rows) out.set(String(r.f), Number(r.n));
  return out;
}

/** SELECT over `paths` with the op applied; columns a file lacks but the op names read as NULL. */
async function rewriteSelect(
  ctx: OpContext,
  paths: string[],
  rw: RowRewrite,
  storage: Map<string, string>,
): Promise<string> {
  const present = new Set((await describe(ctx.conn, parquetSource(paths))).map((c) => c.name));
  const missing = [...rw.referenced].filter((c) => !present.has(c));
  const assigned = new Set(rw.assignments.map((a) => a.column));
  const padded = missing.length
    ? `(SELECT *, ${missing.map((c) => `CAST(NULL AS ${storage.get(c) ?? 'VARCHAR'}) AS ${sqlIdent(c)}`).join(', ')} FROM ${parquetSource(paths)})`
    : parquetSource(paths);
  const drop = missing.filter((c) => !assigned.has(c));
  const exclude = drop.length ? ` EXCLUDE (${drop.map(sqlIdent).join(', ')})` : '';
  if (rw.op === 'delete') return `SELECT *${exclude} FROM ${padded} WHERE (${rw.predicate}) IS NOT TRUE`;
  const replace = rw.assignments
    .map(
      (a) =>
        `CASE WHEN (${rw.predicate}) IS TRUE THEN ${a.sql} ELSE ${sqlIdent(a.column)} END AS ${sqlIdent(a.column)}`,
    )
    .join(', ');
  return `SELECT *${exclude} REPLACE (${replace}) FROM ${padded}`;
}

/**
 * Delete and update: find the files holding matching rows (one scan of the selected
 * partitions), then rewrite only those files, each partition in one streaming COPY, keeping
 * untouched files as they are. Row counts are known before writing: a delete leaves the
 * file rows minus the matches, an update keeps them all.
 */
async function planRowRewrite(
  ctx: OpContext,
  job: DeleteJob | UpdateJob,
  opId: string,
  op: 'delete' | 'update',
): Promise<RewritePlan> {
  const def = getDataset(job.dataset);
  const match = compilePartitionFilter(def, job.partitions);
  const targetBytes = (job.target_file_size_mb ?? ctx.defaults.targetFileSizeMb) * MB;
  const manifests = (await ctx.catalog.partitions(def.name, match)).filter((m) => m.files.length > 0);
  const local = new LocalFiles(ctx.store);
  try {
    const allFiles = manifests.flatMap((m) => m.files);
    const allPaths = await local.resolve(allFiles);
    const schema = await datasetSchema(ctx.conn, def, allPaths);

    const filters = filtersSchema.safeParse(job.filters);
    const pred = compileRowPredicate({ schema: schema.types, filters: job.filters });
    const referenced = new Set(filters.success ? filters.data.map((f) => f.column) : []);
    const predicateParams = pred.params.params.length;
    const assignments: CompiledAssignment[] = [];
    if (op === 'update') {
      const set = (job as UpdateJob).set;
      for (const [column, raw] of Object.entries(set)) {
        if (def.partitionColumns.includes(column)) {
          throw new InvalidInputError(
            `set.${column}: partition columns cannot be updated in place; use repartition`,
            {
              code: 'invalid_expression',
            },
          );
        }
        const expr = parseExpressionInput(asExpression(raw), `set.${column}`);
        for (const c of expressionColumns(expr)) referenced.add(c);
        referenced.add(column);
        assignments.push(
          compileAssignment({
            schema: schema.types,
            column,
            expr,
            params: pred.params,
            path: `set.${column}`,
          }),
        );
      }
    }
    const rw: RowRewrite = {
      op,
      def,
      predicate: pred.sql,
      params: pred.params,
      predicateParams,
      assignments,
      referenced,
    };

    const counts = await countMatches(ctx, allPaths, rw);
    const localOf = new Map(allFiles.map((f, i) => [f.path, allPaths[i]!]));
    const work: { plan: PlannedPartition; files: FileEntry[] }[] = [];
    for (const m of manifests) {
      const remove = m.files.filter((f) => (counts.get(localOf.get(f.path)!) ?? 0) > 0);
      if (remove.length === 0) continue;
      const matched = remove.reduce((n, f) => n + (counts.get(localOf.get(f.path)!) ?? 0), 0);
      const rows = remove.reduce((n, f) => n + f.rows, 0);
      const bytes = remove.reduce((n, f) => n + f.bytes, 0);
      const expectedRows = op === 'delete' ? rows - matched : rows;
      const estBytes = rows > 0 ? Math.round((bytes * expectedRows) / rows) : 0;
      work.push({
        files: remove,
        plan: {
          values: m.partition,
          path: partitionPath(def.partitionColumns, m.partition),
          live: m.files,
          remove,
          expectedRows,
          estimate: {
            files: expectedRows === 0 ? 0 : Math.max(1, Math.ceil(estBytes / targetBytes)),
            bytes: estBytes,
          },
          ...(op === 'delete' ? { rowsDeleted: matched } : { rowsUpdated: matched }),
        },
      });
    }

    return {
      op,
      opId,
      def,
      partitions: work.map((w) => w.plan),
      async write(stage) {
        const out = new Map<string, StagedFile[]>();
        for (const [i, w] of work.entries()) {
          if (w.plan.expectedRows === 0) {
            out.set(w.plan.path, []);
            continue;
          }
          const paths = await local.resolve(w.files);
          const select = await rewriteSelect(ctx, paths, rw, schema.storage);
          const { files } = await copyToDir(ctx.conn, select, rw.params, join(stage, String(i)), {
            fileSizeBytes: fileSizeLimit(w.plan.estimate.bytes, w.plan.estimate.files),
          });
          out.set(w.plan.path, files);
          ctx.heartbeat?.();
        }
        return out;
      },
      release: () => local.release(),
    };
  } catch (err) {
    await local.release();
    throw err;
  }
}

export function planDelete(ctx: OpContext, job: DeleteJob, opId: string): Promise<RewritePlan> {
  return planRowRewrite(ctx, job, opId, 'delete');
}

export function planUpdate(ctx: OpContext, job: UpdateJob, opId: string): Promise<RewritePlan> {
  return planRowRewrite(ctx, job, opId, 'update');
}
