import { type Command, Option } from 'commander';
import { emit } from '../../output.js';
import type { GetContext } from '../index.js';
import { collect, isoDate, nonNegativeInt } from '../options.js';
import { lakeAnalyze, printLakeAnalyze } from './analyze.js';
import { lakeCleanup, printCleanup } from './cleanup.js';
import { lakeToCsv, lakeToXlsx, printConvert } from './convert.js';
import { lakeFiles, printLakeFiles } from './files.js';
import { lakeInfo, printLakeInfo } from './info.js';
import { lakeList, printLakeList } from './list.js';
import { lakeStats, printLakeStats } from './stats.js';

interface Json {
  json?: boolean;
}

const json = () => new Option('--json', 'print JSON');

/** `parquetry lake …` (DESIGN.md "Operator CLI"). */
export function registerLakeCommands(program: Command, ctx: GetContext): void {
  const lake = program
    .command('lake')
    .description('Inspect the lake: live files, stats, partitions, conversions, retention');

  lake
    .command('files')
    .description(
      'Live files of the catalog snapshot, as paths an outside reader opens (absolute paths or s3:// URLs)',
    )
    .argument('<dataset>', 'products, ticks or candles')
    .option('--where <column=value>', 'only partitions with this partition value (repeatable)', collect, [])
    .addOption(json())
    .action(async (dataset: string, o: Json & { where: string[] }) => {
      emit(!!o.json, await lakeFiles(ctx(), dataset, o.where), printLakeFiles);
    });

  lake
    .command('stats')
    .description(
      'Totals: files, rows, bytes, per retailer, oldest and newest date; a line for ticks and candles',
    )
    .addOption(json())
    .action(async (o: Json) => {
      emit(!!o.json, await lakeStats(ctx()), printLakeStats);
    });

  lake
    .command('list')
    .description('Live product files with retailer, date, rows, size and commit time')
    .option('--retailer <retailer>', 'one retailer only')
    .option(
      '--days <n>',
      'only partitions dated today-N or later (what cleanup --days N keeps)',
      nonNegativeInt,
    )
    .addOption(json())
    .action(async (o: Json & { retailer?: string; days?: number }) => {
      emit(!!o.json, await lakeList(ctx(), { retailer: o.retailer, days: o.days }), printLakeList);
    });

  lake
    .command('info')
    .description("A retailer's partitions; with --date, that partition's _metadata file and its files")
    .argument('<retailer>')
    .option('--date <YYYY-MM-DD>', 'one partition', isoDate)
    .addOption(json())
    .action(async (retailer: string, o: Json & { date?: string }) => {
      emit(!!o.json, await lakeInfo(ctx(), retailer, o.date), printLakeInfo);
    });

  lake
    .command('analyze')
    .description(
      'Rows, size, per-column type/nulls/distinct, top brands and price ranges of one Parquet file',
    )
    .argument('<file>', 'a local Parquet file or a lake key')
    .addOption(json())
    .action(async (file: string, o: Json) => {
      emit(!!o.json, await lakeAnalyze(ctx(), file), printLakeAnalyze);
    });

  lake
    .command('to-csv')
    .description('Convert a Parquet file (local or lake key) to CSV')
    .argument('<file>')
    .option('--output <file>', 'default: <name>.csv in the current directory')
    .addOption(json())
    .action(async (file: string, o: Json & { output?: string }) => {
      emit(!!o.json, await lakeToCsv(ctx(), file, o.output), printConvert);
    });

  lake
    .command('to-xlsx')
    .description('Convert a Parquet file (local or lake key) to an Excel workbook')
    .argument('<file>')
    .option('--output <file>', 'default: <name>.xlsx in the current directory')
    .addOption(json())
    .action(async (file: string, o: Json & { output?: string }) => {
      emit(!!o.json, await lakeToXlsx(ctx(), file, o.output), printConvert);
    });

  lake
    .command('cleanup')
    .description('Drop product and tick partitions older than N days through the catalog, then vacuum')
    .requiredOption('--days <n>', 'keep partitions dated today-N or later', nonNegativeInt)
    .option('--dry-run', 'report what would be dropped and deleted; change nothing')
    .option(
      '--grace-minutes <n>',
      'vacuum deletes replaced files only this long after their removal',
      nonNegativeInt,
      60,
    )
    .addOption(json())
    .action(async (o: Json & { days: number; dryRun?: boolean; graceMinutes: number }) => {
      const result = await lakeCleanup(ctx(), {
        days: o.days,
        dryRun: !!o.dryRun,
        graceMinutes: o.graceMinutes,
      });
      emit(!!o.json, result, printCleanup);
    });
}
