import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { DATASETS, getDataset } from '@parquetry/lake';
import {
  formatLoadSummary,
  LAKE_FILE_COLUMN,
  type LoadResult,
  readLoadConfig,
  runLoad,
  terminalProgress,
} from '@parquetry/pg-loader';
import { InvalidInputError, NotFoundError } from '@parquetry/service';
import { type Command, Option } from 'commander';
import type { CliContext } from '../context.js';
import { emit } from '../output.js';
import type { GetContext } from './index.js';
import { collect, parseWhere } from './options.js';
import { openLakeCatalog, openLakeStore } from './resources.js';

export interface LoadCommandOptions {
  config: string;
  where?: readonly string[];
  /** Draw the progress bar (default: stderr is a terminal and the output is not JSON). */
  progress?: boolean;
  signal?: AbortSignal;
}

export interface LoadCommandResult extends LoadResult {
  /** What the argument named: local files, or a lake dataset read from the catalog's live files. */
  input: { kind: 'files'; source: string | string[] } | { kind: 'dataset'; dataset: string; files: number };
}

async function exists(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined)) !== undefined;
}

const isDatasetName = (name: string) => DATASETS.some((d) => d.name === name);

/**
 * `load <file-or-dataset> --config <yaml|toml>`: a local file, directory or glob (Parquet, CSV,
 * NDJSON), or a lake dataset — the live files of the catalog's current snapshot, each recorded in
 * the ledger under its lake key and its rows tagged with it (`_lake_file`), as pg-loader the
 * service does, so the service can follow the table afterwards without loading a file twice.
 * A local path wins over a dataset of the same name. One transaction: all or nothing.
 */
export async function loadCommand(
  ctx: CliContext,
  input: string | undefined,
  opts: LoadCommandOptions,
): Promise<LoadCommandResult> {
  const config = await readLoadConfig(opts.config);
  const bar = opts.progress ? terminalProgress(process.stderr) : undefined;
  const common = {
    config,
    pg: ctx.config.DATABASE_URL,
    logger: ctx.logger,
    signal: opts.signal,
    onProgress: bar?.onProgress,
  };
  try {
    if (input !== undefined && !(await exists(input)) && isDatasetName(input)) {
      const def = getDataset(input);
      const catalog = await openLakeCatalog(ctx);
      const store = await openLakeStore(ctx);
      const live = await catalog.liveFiles(def.name, parseWhere(opts.where));
      if (live.length === 0) {
        throw new NotFoundError(
          `dataset ${def.name} has no live files${opts.where?.length ? ` where ${opts.where.join(', ')}` : ''}`,
        );
      }
      // S3 lakes download each file to the store's cache (DuckDB's httpfs is not bundled).
      const keyOf = new Map<string, string>();
      for (const f of live) keyOf.set(resolve(await store.localPath(f.path)), f.path);
      const lakeKey = (local: string) => keyOf.get(resolve(local)) ?? local;
      const result = await runLoad({
        ...common,
        source: [...keyOf.keys()],
        ledgerKey: lakeKey,
        fileTag: { column: LAKE_FILE_COLUMN, valueOf: lakeKey },
      });
      return { ...result, input: { kind: 'dataset', dataset: def.name, files: live.length } };
    }
    if (opts.where?.length) {
      throw new InvalidInputError(
        '--where applies to a lake dataset (products, ticks, candles), not to files',
      );
    }
    const source = input ?? config.path;
    if (source === undefined) {
      throw new InvalidInputError('nothing to load: give a file or dataset, or set "path" in the config');
    }
    const result = await runLoad({ ...common, source });
    return { ...result, input: { kind: 'files', source: typeof source === 'string' ? source : [...source] } };
  } finally {
    bar?.done();
  }
}

export function printLoad(r: LoadCommandResult): void {
  process.stdout.write(`${formatLoadSummary(r)}\n`);
}

/** `parquetry load` (DESIGN.md "Operator CLI"; pg-loader's CLI). */
export function registerLoadCommand(program: Command, ctx: GetContext): void {
  program
    .command('load')
    .description(
      'Load Parquet, CSV or NDJSON files, or a lake dataset, into PostgreSQL with COPY (one transaction; rows, time, peak memory and the strategy at the end)',
    )
    .argument(
      '[file-or-dataset]',
      'a file, directory or glob, or a dataset (products, ticks, candles); default: the config\'s "path"',
    )
    .requiredOption(
      '--config <file>',
      'load config (.yaml, .yml or .toml): table, casts, naming, drift, memory',
    )
    .option('--where <column=value>', 'dataset only: partitions with this value (repeatable)', collect, [])
    .addOption(new Option('--json', 'print the result as JSON'))
    .action(async (input: string | undefined, o: { config: string; where: string[]; json?: boolean }) => {
      const controller = new AbortController();
      // Ctrl-C rolls the load back instead of leaving it to the server to notice the lost connection.
      const onSigint = () =>
        controller.abort(new InvalidInputError('load interrupted (SIGINT): rolled back'));
      process.once('SIGINT', onSigint);
      try {
        const result = await loadCommand(ctx(), input, {
          config: o.config,
          where: o.where,
          progress: !o.json && process.stderr.isTTY === true,
          signal: controller.signal,
        });
        emit(!!o.json, result, printLoad);
      } finally {
        process.off('SIGINT', onSigint);
      }
    });
}
