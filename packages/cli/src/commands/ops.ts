import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type CompactorOp,
  type JobResult,
  type OpEnvironment,
  type OpResult,
  openOpEnvironment,
  runOperation,
  type VacuumOpResult,
} from '@parquetry/compactor';
import { parseExpression } from '@parquetry/lake';
import { InvalidInputError } from '@parquetry/service';
import { type Command, Option } from 'commander';
import type { CliContext } from '../context.js';
import { emit, printTable } from '../output.js';
import type { GetContext } from './index.js';
import { collect, commaList, nonNegativeInt } from './options.js';
import { CLI_WRITER_ID, openBus, openLakeStore } from './resources.js';

/**
 * `parquetry compact | repartition | delete | update | upsert | vacuum`: the compactor's
 * operations run in this process with the compactor's own code (one atomic catalog commit,
 * dry run, backups, row-count validation), against the lake and catalog of LAKE_URL / NATS_URL.
 */

interface Common {
  json?: boolean;
  dryRun?: boolean;
  backup?: boolean;
  where: string[];
  partitions?: string;
  opId?: string;
  targetFileSizeMb?: number;
  memoryLimit?: string;
}

function parseJsonOption(name: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InvalidInputError(`${name} must be JSON: ${(err as Error).message}`, { cause: err });
  }
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0)
    throw new InvalidInputError(`expected a positive number, got ${JSON.stringify(value)}`);
  return n;
}

/** `--where col=value` pairs and `--partitions '<json filters>'` as one partition filter. */
function partitionFilter(o: Common): unknown[] | undefined {
  const out: unknown[] = [];
  for (const pair of o.where) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new InvalidInputError(`--where expects column=value, got ${JSON.stringify(pair)}`);
    out.push({ column: pair.slice(0, eq).trim(), op: '=', value: pair.slice(eq + 1) });
  }
  if (o.partitions !== undefined) {
    const extra = parseJsonOption('--partitions', o.partitions);
    if (!Array.isArray(extra)) throw new InvalidInputError('--partitions must be a JSON array of filters');
    out.push(...extra);
  }
  return out.length > 0 ? out : undefined;
}

/** `col=<expression>` (text form: `price * 1.1`, `upper(side)`, `'text'`, `cast(x as BIGINT)`). */
function assignments(pairs: readonly string[], flag: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0)
      throw new InvalidInputError(`${flag} expects column=expression, got ${JSON.stringify(pair)}`);
    const column = pair.slice(0, eq).trim();
    if (Object.hasOwn(out, column)) throw new InvalidInputError(`${flag} sets ${column} twice`);
    Object.defineProperty(out, column, {
      value: parseExpression(pair.slice(eq + 1)),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

function base(dataset: string, o: Common): Record<string, unknown> {
  const partitions = partitionFilter(o);
  return {
    dataset,
    ...(partitions ? { partitions } : {}),
    dry_run: !!o.dryRun,
    backup: !!o.backup,
    ...(o.opId ? { op_id: o.opId } : {}),
    ...(o.targetFileSizeMb !== undefined ? { target_file_size_mb: o.targetFileSizeMb } : {}),
  };
}

function openEnvironment(ctx: CliContext, memoryLimit: string | undefined): Promise<OpEnvironment> {
  return ctx.once('ops.environment', async () => {
    const bus = await openBus(ctx);
    const store = await openLakeStore(ctx);
    const env = await openOpEnvironment({
      nc: bus.nc,
      js: bus.js,
      store,
      logger: ctx.logger,
      writerId: CLI_WRITER_ID,
      workDir: join(tmpdir(), `parquetry-cli-${process.pid}`),
      memoryLimit: memoryLimit ?? process.env.DUCKDB_MEMORY_LIMIT ?? '1GB',
      threads: 2,
      targetFileSizeMb: 128,
      vacuumGraceMinutes: 60,
      allowLocalFiles: true,
      catalogRetryForMs: 10_000,
    });
    // A CLI run killed mid-commit left an intent: finish it before starting anything new.
    await env.catalog.recover(CLI_WRITER_ID);
    return { value: env, close: async () => env.close() };
  });
}

/** Runs one operation with the compactor's code; the same job a `lake.ops.<op>` message carries. */
export async function runOpCommand(
  ctx: CliContext,
  op: CompactorOp,
  job: Record<string, unknown>,
  memoryLimit?: string,
) {
  const env = await openEnvironment(ctx, memoryLimit);
  const tty = process.stderr.isTTY === true && process.stdout.isTTY === true;
  let timer: NodeJS.Timeout | undefined;
  if (tty) {
    const started = Date.now();
    timer = setInterval(
      () => process.stderr.write(`\r${op}: ${((Date.now() - started) / 1000).toFixed(0)} s`),
      1000,
    );
  }
  try {
    return await runOperation(env.ctx, op, job);
  } finally {
    if (timer) {
      clearInterval(timer);
      process.stderr.write('\n');
    }
  }
}

const mb = (n: number) => (n / (1024 * 1024)).toFixed(2);

export function printOpResult(r: JobResult): void {
  if (r.op === 'vacuum') {
    const v = r as VacuumOpResult;
    process.stdout.write(
      `vacuum${v.dry_run ? ' (dry run)' : ''}: ${v.expired.length} replaced files and ${v.orphans.length} orphans, ${mb(v.bytes)} MB (grace ${v.grace_minutes} min)\n`,
    );
    for (const p of [...v.expired, ...v.orphans]) process.stdout.write(`  ${p}\n`);
    return;
  }
  if (r.op === 'cleanup') {
    process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    return;
  }
  const o = r as OpResult;
  process.stdout.write(
    `${o.op} ${o.dataset} (${o.op_id}): ${o.status}${o.commit_id ? `, commit ${o.commit_id}` : ''}\n`,
  );
  if (o.partitions.length > 0) {
    printTable(
      o.partitions.map((p) => ({
        partition: p.partition,
        files: `${p.files_before} → ${p.files_after}`,
        rows: `${p.rows_before} → ${p.rows_after}`,
        MB: `${mb(p.bytes_before)} → ${mb(p.bytes_after)}`,
        removed: p.files_removed,
        added: p.files_added,
        ...(p.rows_deleted !== undefined ? { deleted: p.rows_deleted } : {}),
        ...(p.rows_updated !== undefined ? { updated: p.rows_updated } : {}),
        ...(p.rows_inserted !== undefined ? { inserted: p.rows_inserted } : {}),
      })),
    );
  }
  const t = o.totals;
  process.stdout.write(
    `total: ${t.partitions} partitions, files ${t.files_before} → ${t.files_after}, rows ${t.rows_before} → ${t.rows_after}, MB ${mb(t.bytes_before)} → ${mb(t.bytes_after)}${o.backup ? `, backup ${o.backup}` : ''}\n`,
  );
}

function common(cmd: Command): Command {
  return cmd
    .option('--where <column=value>', 'only partitions with this partition value (repeatable)', collect, [])
    .option(
      '--partitions <json>',
      'partition filter as JSON filters, e.g. [{"column":"date","op":">=","value":"2025-09-01"}]',
    )
    .option('--dry-run', 'report exactly what would change (partitions, files, rows); change nothing')
    .option('--backup', 'copy every replaced file to _backups/<op-id>/ before the commit')
    .option('--op-id <id>', 'idempotency key: running again with the same id never applies twice')
    .option('--target-file-size-mb <mb>', 'size of the files written (default 128)', positiveNumber)
    .option('--memory-limit <size>', 'DuckDB memory_limit, e.g. 512MB (beyond it DuckDB spills to disk)')
    .addOption(new Option('--json', 'print the result as JSON'));
}

export function registerOpsCommands(program: Command, ctx: GetContext): void {
  common(
    program
      .command('compact')
      .description(
        'Merge small files of each selected partition into files of the target size, in one atomic commit',
      )
      .argument('<dataset>', 'products, ticks or candles'),
  )
    .option(
      '--min-file-count <n>',
      'compact a partition only when it has at least this many small files',
      nonNegativeInt,
    )
    .option(
      '--max-file-size-mb <mb>',
      'files of this size or more are left alone (default: the target size)',
      positiveNumber,
    )
    .action(async (dataset: string, o: Common & { minFileCount?: number; maxFileSizeMb?: number }) => {
      const job = {
        ...base(dataset, o),
        ...(o.minFileCount !== undefined ? { min_file_count: o.minFileCount } : {}),
        ...(o.maxFileSizeMb !== undefined ? { max_file_size_mb: o.maxFileSizeMb } : {}),
      };
      emit(!!o.json, await runOpCommand(ctx(), 'compact', job, o.memoryLimit), printOpResult);
    });

  common(
    program
      .command('repartition')
      .description(
        'Give rows new partition values from expressions over the row; moves them in one atomic commit',
      )
      .argument('<dataset>')
      .requiredOption(
        '--set <column=expression>',
        "new value of a partition column, e.g. date='date(ts)' or symbol='upper(symbol)' (repeatable)",
        collect,
        [],
      ),
  ).action(async (dataset: string, o: Common & { set: string[] }) => {
    const job = { ...base(dataset, o), partition_by: assignments(o.set, '--set') };
    emit(!!o.json, await runOpCommand(ctx(), 'repartition', job, o.memoryLimit), printOpResult);
  });

  common(
    program
      .command('delete')
      .description('Delete the rows matching every filter (rewrites only the files holding them)')
      .argument('<dataset>')
      .requiredOption(
        '--filters <json>',
        'row filters, e.g. [{"column":"price","op":"<","value":0}]; [] deletes all rows of the selected partitions',
      ),
  ).action(async (dataset: string, o: Common & { filters: string }) => {
    const job = { ...base(dataset, o), filters: parseJsonOption('--filters', o.filters) };
    emit(!!o.json, await runOpCommand(ctx(), 'delete', job, o.memoryLimit), printOpResult);
  });

  common(
    program
      .command('update')
      .description('Set columns of the rows matching every filter, to literals or expressions over the row')
      .argument('<dataset>')
      .option('--filters <json>', 'row filters (JSON); default: every row of the selected partitions', '[]')
      .requiredOption(
        '--set <column=expression>',
        "e.g. price='price * 1.1' or marca=\"'Apple'\" (repeatable)",
        collect,
        [],
      ),
  ).action(async (dataset: string, o: Common & { filters: string; set: string[] }) => {
    const job = {
      ...base(dataset, o),
      filters: parseJsonOption('--filters', o.filters),
      set: assignments(o.set, '--set'),
    };
    emit(!!o.json, await runOpCommand(ctx(), 'update', job, o.memoryLimit), printOpResult);
  });

  common(
    program
      .command('upsert')
      .description('Update rows whose keys match the file, insert the others (Parquet, CSV or NDJSON)')
      .argument('<dataset>')
      .argument('<file>', 'a local file, or lake:<key> for an object of the lake')
      .requiredOption('--key <columns>', 'key columns (within a partition), comma-separated', commaList)
      .option(
        '--update <columns>',
        'columns updated on a match (default: all of the file but keys and partition columns)',
        commaList,
      )
      .addOption(
        new Option('--format <format>', 'default: from the extension').choices(['parquet', 'csv', 'ndjson']),
      ),
  ).action(
    async (
      dataset: string,
      file: string,
      o: Common & { key: string[]; update?: string[]; format?: string },
    ) => {
      const job = {
        ...base(dataset, o),
        source: file.startsWith('lake:') ? { key: file.slice('lake:'.length) } : { path: file },
        key_columns: o.key,
        ...(o.update ? { update_columns: o.update } : {}),
        ...(o.format ? { format: o.format } : {}),
      };
      emit(!!o.json, await runOpCommand(ctx(), 'upsert', job, o.memoryLimit), printOpResult);
    },
  );

  program
    .command('vacuum')
    .description('Delete files replaced more than the grace period ago, and orphans no commit references')
    .argument('[dataset]', 'one dataset (default: all)')
    .option(
      '--grace-minutes <n>',
      'keep replaced and uncommitted files this long (default 60)',
      nonNegativeInt,
    )
    .option('--dry-run', 'list what would be deleted; delete nothing')
    .addOption(new Option('--json', 'print the result as JSON'))
    .action(
      async (dataset: string | undefined, o: { json?: boolean; dryRun?: boolean; graceMinutes?: number }) => {
        const job = {
          ...(dataset ? { dataset } : {}),
          dry_run: !!o.dryRun,
          ...(o.graceMinutes !== undefined ? { grace_minutes: o.graceMinutes } : {}),
        };
        emit(!!o.json, await runOpCommand(ctx(), 'vacuum', job), printOpResult);
      },
    );
}
