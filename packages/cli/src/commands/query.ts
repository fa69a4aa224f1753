import { resolve } from 'node:path';
import { DuckDBTypeId, StatementType } from '@duckdb/node-api';
import { DATASETS, type DatasetDef, type DuckDB, openDuckDB, sqlIdent, sqlString } from '@parquetry/lake';
import { InvalidInputError } from '@parquetry/service';
import { type Command, Option } from 'commander';
import type { CliContext } from '../context.js';
import { emit, printTable } from '../output.js';
import type { GetContext } from './index.js';
import { positiveInt } from './options.js';
import { openLakeCatalog, openLakeStore } from './resources.js';

export interface QueryOptions {
  /** Rows returned at most; the result says when there were more. */
  maxRows: number;
}

export interface QueryResult {
  columns: { name: string; type: string }[];
  rows: Record<string, unknown>[];
  row_count: number;
  /** More rows than `maxRows` matched: only the first ones are in `rows`. */
  truncated: boolean;
  /** The datasets the query saw as views, with the live files each read. */
  datasets: { name: string; files: number }[];
  seconds: number;
}

/** The datasets a query names (as whole words); only those are opened. */
export function referencedDatasets(sql: string): DatasetDef[] {
  return DATASETS.filter((d) => new RegExp(`(^|[^A-Za-z0-9_])${d.name}($|[^A-Za-z0-9_])`, 'i').test(sql));
}

/** A view with the dataset's declared columns and no rows, for a dataset without live files. */
function emptyViewSql(def: DatasetDef): string {
  const cols = Object.entries(def.columns).map(
    ([name, type]) => `CAST(NULL AS ${type === 'JSON' ? 'VARCHAR' : type}) AS ${sqlIdent(name)}`,
  );
  return `SELECT ${cols.join(', ')} WHERE false`;
}

const INTEGERS = new Set<number>([
  DuckDBTypeId.BIGINT,
  DuckDBTypeId.UBIGINT,
  DuckDBTypeId.HUGEINT,
  DuckDBTypeId.UHUGEINT,
]);

/**
 * DuckDB's JSON conversion gives 64-bit integers and decimals as strings (they may not fit a
 * double): numbers when they do fit exactly, strings otherwise.
 */
function numberConverter(type: { typeId: number; width?: number }): ((v: unknown) => unknown) | undefined {
  if (INTEGERS.has(type.typeId)) {
    return (v) => (typeof v === 'string' && Number.isSafeInteger(Number(v)) ? Number(v) : v);
  }
  if (type.typeId === DuckDBTypeId.DECIMAL && (type.width ?? 38) <= 15) {
    return (v) => (typeof v === 'string' ? Number(v) : v);
  }
  return undefined;
}

/**
 * `query "<SQL>"`: one read-only SELECT over the lake. Each dataset the SQL names is a view over
 * the live files of the catalog's current snapshot (never a half-written or replaced file).
 * Read-only twice over: only a single SELECT statement is accepted (DuckDB's own parser decides,
 * so COPY, ATTACH, CREATE, INSERT, SET, INSTALL, EXPLAIN ANALYZE … are refused), and before it
 * runs DuckDB is locked down to reading exactly those files (`allowed_paths`, no other file or
 * network access, configuration locked).
 */
export async function lakeQuery(ctx: CliContext, sql: string, opts: QueryOptions): Promise<QueryResult> {
  const started = performance.now();
  if (sql.trim() === '') throw new InvalidInputError('empty query');
  // Its own instance: the lock-down below must not touch the DuckDB other commands share.
  const db: DuckDB = await openDuckDB({ threads: 2 });
  try {
    const { conn } = db;
    const datasets: QueryResult['datasets'] = [];
    const allowed: string[] = [];
    const refs = referencedDatasets(sql);
    if (refs.length > 0) {
      const catalog = await openLakeCatalog(ctx);
      const store = await openLakeStore(ctx);
      for (const def of refs) {
        const live = await catalog.liveFiles(def.name);
        // S3 lakes download to the store's cache (DuckDB's httpfs is not bundled).
        const paths: string[] = [];
        for (const f of live) paths.push(resolve(await store.localPath(f.path)));
        allowed.push(...paths);
        const body =
          paths.length === 0
            ? emptyViewSql(def)
            : `SELECT * FROM read_parquet([${paths.map(sqlString).join(', ')}], union_by_name = true, hive_partitioning = false)`;
        await conn.run(`CREATE VIEW ${sqlIdent(def.name)} AS ${body}`);
        datasets.push({ name: def.name, files: paths.length });
      }
    }
    if (allowed.length > 0) await conn.run(`SET allowed_paths = [${allowed.map(sqlString).join(', ')}]`);
    await conn.run('SET enable_external_access = false');
    await conn.run('SET lock_configuration = true');

    let statements: Awaited<ReturnType<typeof conn.extractStatements>>;
    try {
      statements = await conn.extractStatements(sql);
    } catch (err) {
      throw new InvalidInputError((err as Error).message, { code: 'bad_query', cause: err });
    }
    if (statements.count !== 1) {
      throw new InvalidInputError(`expected one SQL statement, got ${statements.count}`, {
        code: 'bad_query',
      });
    }
    let prepared: Awaited<ReturnType<typeof statements.prepare>>;
    try {
      prepared = await statements.prepare(0);
    } catch (err) {
      throw new InvalidInputError((err as Error).message, { code: 'bad_query', cause: err });
    }
    if (prepared.statementType !== StatementType.SELECT) {
      const kind = StatementType[prepared.statementType] ?? String(prepared.statementType);
      throw new InvalidInputError(`query is read-only: only SELECT is allowed, got ${kind}`, {
        code: 'read_only',
      });
    }
    let result: Awaited<ReturnType<typeof prepared.stream>>;
    try {
      result = await prepared.stream();
    } catch (err) {
      throw new InvalidInputError((err as Error).message, { code: 'bad_query', cause: err });
    }
    const names = result.columnNames();
    const types = result.columnTypes();
    const converters = types.map((t) => numberConverter(t as { typeId: number; width?: number }));
    const rows: Record<string, unknown>[] = [];
    let truncated = false;
    try {
      outer: for await (const chunk of result.yieldRowObjectJson()) {
        for (const row of chunk) {
          if (rows.length === opts.maxRows) {
            truncated = true;
            break outer;
          }
          const out: Record<string, unknown> = {};
          names.forEach((n, i) => {
            const conv = converters[i];
            out[n] = conv ? conv(row[n]) : row[n];
          });
          rows.push(out);
        }
      }
    } catch (err) {
      throw new InvalidInputError((err as Error).message, { code: 'bad_query', cause: err });
    }
    return {
      columns: names.map((name, i) => ({ name, type: types[i]!.toString() })),
      rows,
      row_count: rows.length,
      truncated,
      datasets,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    db.close();
  }
}

export function printQuery(r: QueryResult): void {
  printTable(
    r.rows,
    r.columns.map((c) => c.name),
  );
  const more = r.truncated ? ` (more rows matched: raise --max-rows)` : '';
  process.stderr.write(`${r.row_count} row(s) in ${r.seconds.toFixed(2)} s${more}\n`);
}

/** `parquetry query` (DESIGN.md "Operator CLI"). */
export function registerQueryCommand(program: Command, ctx: GetContext): void {
  program
    .command('query')
    .description(
      'Read-only DuckDB SQL over the lake: products, ticks and candles are views over the live files of the catalog',
    )
    .argument('<sql>', 'one SELECT, e.g. "SELECT symbol, count(*) FROM ticks GROUP BY 1"')
    .option('--max-rows <n>', 'return at most this many rows', positiveInt, 10_000)
    .addOption(new Option('--json', 'print {columns, rows, row_count, truncated, …} as JSON'))
    .action(async (sql: string, o: { maxRows: number; json?: boolean }) => {
      emit(!!o.json, await lakeQuery(ctx(), sql, { maxRows: o.maxRows }), printQuery);
    });
}
