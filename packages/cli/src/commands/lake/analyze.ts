import type { DuckDBConnection } from '@duckdb/node-api';
import { parquetFileStats, sqlIdent, sqlString } from '@parquetry/lake';
import type { CliContext } from '../../context.js';
import { printTable } from '../../output.js';
import { openCliDuckDB } from '../resources.js';
import { resolveParquetInput } from './paths.js';
import { isBrandColumn, isNumericType, isPriceColumn, priceTextSql } from './price.js';
import { formatBytes, formatCount } from './summary.js';

export interface ColumnAnalysis {
  name: string;
  type: string;
  nulls: number;
  /** Approximate (HyperLogLog), exact enough to tell a key from a category. */
  distinct: number;
}

export interface PriceAnalysis {
  column: string;
  type: string;
  /** Values that parsed as numbers. */
  values: number;
  /** Non-null values that did not parse (text columns only). */
  unparsed: number;
  min: number | null;
  max: number | null;
  avg: number | null;
  median: number | null;
  /** Positive values by order of magnitude: [from, to). */
  ranges: { from: number; to: number; count: number }[];
}

export interface AnalyzeResult {
  file: string;
  key: string | null;
  rows: number;
  bytes: number;
  row_groups: number;
  compression: string | null;
  columns: ColumnAnalysis[];
  brands: { column: string; top: { value: string; count: number }[] } | null;
  prices: PriceAnalysis[];
}

const TOP_BRANDS = 10;

async function rowsOf(conn: DuckDBConnection, sql: string): Promise<Record<string, unknown>[]> {
  return (await conn.runAndReadAll(sql)).getRowObjectsJS() as Record<string, unknown>[];
}

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/** `lake analyze <file>`: a local Parquet file or a lake key — schema, nulls, distincts, brands, prices. */
export async function lakeAnalyze(ctx: CliContext, file: string): Promise<AnalyzeResult> {
  const input = await resolveParquetInput(ctx, file);
  const { conn } = await openCliDuckDB(ctx);
  const stats = await parquetFileStats(conn, input.path);
  const src = `read_parquet(${sqlString(input.path)}, hive_partitioning = false)`;

  let columns: ColumnAnalysis[] = [];
  if (stats.columns.length > 0) {
    const aggs = stats.columns.flatMap((c, i) => [
      `count(*) - count(${sqlIdent(c.name)}) AS n${i}`,
      `approx_count_distinct(${sqlIdent(c.name)}) AS d${i}`,
    ]);
    const [row] = await rowsOf(conn, `SELECT ${aggs.join(', ')} FROM ${src}`);
    columns = stats.columns.map((c, i) => ({
      name: c.name,
      type: c.type,
      nulls: Number(row?.[`n${i}`] ?? 0),
      distinct: Number(row?.[`d${i}`] ?? 0),
    }));
  }

  const brand = stats.columns.find((c) => isBrandColumn(c.name, c.type));
  const brands = brand
    ? {
        column: brand.name,
        top: (
          await rowsOf(
            conn,
            `SELECT ${sqlIdent(brand.name)} AS value, count(*) AS count FROM ${src}
             WHERE nullif(trim(${sqlIdent(brand.name)}), '') IS NOT NULL
             GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ${TOP_BRANDS}`,
          )
        ).map((r) => ({ value: String(r.value), count: Number(r.count) })),
      }
    : null;

  const prices: PriceAnalysis[] = [];
  for (const c of stats.columns.filter((x) => isPriceColumn(x.name, x.type))) {
    const col = sqlIdent(c.name);
    const value = isNumericType(c.type) ? `CAST(${col} AS DOUBLE)` : priceTextSql(col);
    const parsed = `(SELECT ${col} IS NOT NULL AS present, ${value} AS v FROM ${src})`;
    const [s] = await rowsOf(
      conn,
      `SELECT count(v) FILTER (WHERE isfinite(v)) AS values,
              count(*) FILTER (WHERE present AND (v IS NULL OR NOT isfinite(v))) AS unparsed,
              min(v) FILTER (WHERE isfinite(v)) AS min, max(v) FILTER (WHERE isfinite(v)) AS max,
              avg(v) FILTER (WHERE isfinite(v)) AS avg, median(v) FILTER (WHERE isfinite(v)) AS median
       FROM ${parsed}`,
    );
    const ranges = await rowsOf(
      conn,
      `SELECT CAST(floor(log10(v)) AS INTEGER) AS k, count(*) AS count FROM ${parsed}
       WHERE v > 0 AND isfinite(v) GROUP BY 1 ORDER BY 1`,
    );
    prices.push({
      column: c.name,
      type: c.type,
      values: Number(s?.values ?? 0),
      unparsed: Number(s?.unparsed ?? 0),
      min: num(s?.min),
      max: num(s?.max),
      avg: num(s?.avg),
      median: num(s?.median),
      ranges: ranges.map((r) => ({
        from: 10 ** Number(r.k),
        to: 10 ** (Number(r.k) + 1),
        count: Number(r.count),
      })),
    });
  }

  return {
    file: input.path,
    key: input.key ?? null,
    rows: stats.rows,
    bytes: stats.bytes,
    row_groups: stats.rowGroups,
    compression: stats.compression ?? null,
    columns,
    brands,
    prices,
  };
}

const round = (v: number | null) => (v === null ? '' : Number.isInteger(v) ? formatCount(v) : v.toFixed(2));

export function printLakeAnalyze(a: AnalyzeResult): void {
  process.stdout.write(
    `${a.key ?? a.file}: ${formatCount(a.rows)} rows, ${formatBytes(a.bytes)}, ${a.row_groups} row groups, ` +
      `${a.compression ?? 'no'} compression, ${a.columns.length} columns\n\n`,
  );
  printTable(
    a.columns.map((c) => ({
      column: c.name,
      type: c.type,
      nulls: formatCount(c.nulls),
      'null %': a.rows > 0 ? ((100 * c.nulls) / a.rows).toFixed(1) : '0.0',
      distinct: `~${formatCount(c.distinct)}`,
    })),
  );
  if (a.brands) {
    process.stdout.write(`\ntop ${a.brands.column}:\n`);
    printTable(a.brands.top.map((b) => ({ [a.brands!.column]: b.value, count: formatCount(b.count) })));
  }
  for (const p of a.prices) {
    process.stdout.write(
      `\n${p.column} (${p.type}): ${formatCount(p.values)} values` +
        `${p.unparsed > 0 ? `, ${formatCount(p.unparsed)} unparsed` : ''}, ` +
        `min ${round(p.min)}, median ${round(p.median)}, avg ${round(p.avg)}, max ${round(p.max)}\n`,
    );
    printTable(
      p.ranges.map((r) => ({ range: `${round(r.from)} – ${round(r.to)}`, count: formatCount(r.count) })),
    );
  }
}
