import {
  type BackfillOptions,
  CandleMaintenance,
  type CandleSource,
  type RebuildReport,
  type UpdateOptions,
  type VerifyOptions,
  type VerifyReport,
} from '@parquetry/candle-aggregator/cli';
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { CliContext } from '../context.js';
import { emit, printTable, progress } from '../output.js';
import type { GetContext } from './index.js';
import { commaList, isoDate, nonNegativeInt } from './options.js';
import { CLI_WRITER_ID, openCliDuckDB, openLakeCatalog, openLakeStore } from './resources.js';

/**
 * `parquetry candles backfill | update | verify` (docs/DESIGN.md "Operator CLI"): a thin layer
 * over CandleMaintenance in @parquetry/candle-aggregator, which holds the logic.
 */
async function maintenance(
  ctx: CliContext,
  label: string,
  json: boolean,
): Promise<[CandleMaintenance, () => void]> {
  const [catalog, store, duck] = await Promise.all([
    openLakeCatalog(ctx),
    openLakeStore(ctx),
    openCliDuckDB(ctx),
  ]);
  let bar: ReturnType<typeof progress> | undefined;
  const m = new CandleMaintenance({
    catalog,
    store,
    conn: duck.conn,
    logger: ctx.logger,
    writerId: CLI_WRITER_ID,
    onPartition: (done, total) => {
      if (json) return;
      bar ??= progress(total, label);
      bar.tick();
      if (done === total) bar.finish();
    },
  });
  return [m, () => bar?.finish()];
}

export async function candlesBackfill(
  ctx: CliContext,
  opts: BackfillOptions,
  json = true,
): Promise<RebuildReport> {
  const [m] = await maintenance(ctx, 'backfill', json);
  return await m.backfill(opts);
}

export async function candlesUpdate(
  ctx: CliContext,
  opts: UpdateOptions,
  json = true,
): Promise<RebuildReport> {
  const [m] = await maintenance(ctx, 'update', json);
  return await m.update(opts);
}

export async function candlesVerify(
  ctx: CliContext,
  opts: VerifyOptions,
  json = true,
): Promise<VerifyReport> {
  const [m] = await maintenance(ctx, 'verify', json);
  return await m.verify(opts);
}

function printRebuild(r: RebuildReport): void {
  const prefix = r.dry_run ? '[dry run] ' : '';
  if (!r.range) {
    process.stdout.write(
      `${prefix}${r.symbol}: nothing in the ${r.source === 'ticks' ? 'tick archive' : 'lake (1m)'} to rebuild from\n`,
    );
    return;
  }
  process.stdout.write(
    `${prefix}${r.operation} ${r.symbol} ${r.timeframes.join(',')} from ${r.source} ` +
      `[${r.range.start}, ${r.range.end}): ${r.source_rows} source rows\n`,
  );
  if (r.partitions.length > 0) {
    printTable(
      r.partitions.map((p) => ({ ...p })),
      ['timeframe', 'period', 'added', 'changed', 'removed', 'unchanged', 'differing', 'stale'],
    );
  }
  const t = r.totals;
  const verb = r.dry_run ? 'would change' : 'changed';
  process.stdout.write(
    `${prefix}${verb} ${t.added + t.changed + t.removed} candles (${t.added} added, ${t.changed} changed, ` +
      `${t.removed} removed) in ${r.partitions.filter((p) => p.added + p.changed + p.removed > 0).length} partitions; ` +
      `${t.unchanged} unchanged\n`,
  );
  if (t.differing + t.stale > 0) {
    process.stdout.write(
      `${t.differing} differ from the source and ${t.stale} are not in it: kept (use --force)\n`,
    );
  }
}

function printVerify(r: VerifyReport): void {
  process.stdout.write(`checked ${r.files_checked} files in ${r.partitions_checked} partitions\n`);
  for (const d of r.damaged) {
    process.stdout.write(`damaged: ${d.path}: ${d.problems.join(', ')}${d.detail ? ` (${d.detail})` : ''}\n`);
  }
  for (const x of r.repaired) {
    process.stdout.write(
      `repaired ${x.partition.timeframe}/${x.partition.symbol}/${x.partition.period}: ` +
        `${x.removed.length} files → ${x.added.length}, ${x.candles} candles (${x.rebuilt} rebuilt from ticks)\n`,
    );
  }
  for (const u of r.unrepaired) {
    process.stdout.write(
      `not repaired ${u.partition.timeframe}/${u.partition.symbol}/${u.partition.period}: ${u.reason}\n`,
    );
  }
  process.stdout.write(r.ok ? 'ok\n' : 'damaged files remain\n');
}

function source(value: string): CandleSource {
  if (value !== 'ticks' && value !== '1m') throw new InvalidArgumentError('expected ticks or 1m');
  return value;
}

export function registerCandlesCommands(program: Command, ctx: GetContext): void {
  const candles = program
    .command('candles')
    .description('Candles in the lake: rebuild from the tick archive, verify, repair');
  const json = () => new Option('--json', 'print JSON');

  candles
    .command('backfill')
    .description(
      'Rebuild a symbol’s candles over whole UTC days from the raw tick archive (or higher timeframes from 1m candles)',
    )
    .requiredOption('--symbol <symbol>', 'symbol')
    .option('--timeframes <list>', 'comma-separated, of 1m,5m,15m,1h,4h,1d (default all)', commaList)
    .option('--start <date>', 'first UTC day YYYY-MM-DD (default: first day in the source)', isoDate)
    .option('--end <date>', 'last UTC day YYYY-MM-DD, inclusive (default: last day in the source)', isoDate)
    .option(
      '--from <source>',
      'ticks (the raw archive) or 1m (roll up the lake’s 1m candles)',
      source,
      'ticks',
    )
    .option('--force', 'also replace candles that differ and drop candles the source does not produce')
    .option('--dry-run', 'report the partitions and candle counts that would change; change nothing')
    .addOption(json())
    .action(async (o: Omit<BackfillOptions, 'timeframes'> & { timeframes?: string[]; json?: boolean }) => {
      const { json: asJson, timeframes, ...rest } = o;
      const report = await candlesBackfill(
        ctx(),
        { ...rest, ...(timeframes ? { timeframes: timeframes as BackfillOptions['timeframes'] } : {}) },
        !!asJson,
      );
      emit(!!asJson, report, printRebuild);
    });

  candles
    .command('update')
    .description('Recompute the last days from the tick archive and write only the partitions that changed')
    .requiredOption('--symbol <symbol>', 'symbol')
    .option('--days-back <n>', 'days before today (UTC) to recompute, today included', nonNegativeInt, 1)
    .option('--dry-run', 'report the partitions and candle counts that would change; change nothing')
    .addOption(json())
    .action(async (o: UpdateOptions & { json?: boolean }) => {
      const { json: asJson, ...rest } = o;
      emit(!!asJson, await candlesUpdate(ctx(), rest, !!asJson), printRebuild);
    });

  candles
    .command('verify')
    .description('Check every live candle file (present, readable, row count and sha256 as committed)')
    .option('--symbol <symbol>', 'only this symbol')
    .option('--repair', 'regenerate damaged partitions from the tick archive through a catalog commit')
    .addOption(json())
    .action(async (o: VerifyOptions & { json?: boolean }) => {
      const { json: asJson, ...rest } = o;
      const report = await candlesVerify(ctx(), rest, !!asJson);
      emit(!!asJson, report, printVerify);
      // Damaged files left: exit code 1, after the report (main.ts keeps a code set here).
      if (!report.ok) process.exitCode = 1;
    });
}
