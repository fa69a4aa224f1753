import { rm, stat } from 'node:fs/promises';
import { basename, extname, resolve } from 'node:path';
import { type ParquetValue, parquetFileStats, readParquetRows, sqlString } from '@parquetry/lake';
import { InvalidInputError } from '@parquetry/service';
import ExcelJS from 'exceljs';
import type { CliContext } from '../../context.js';
import { progress } from '../../output.js';
import { openCliDuckDB } from '../resources.js';
import { resolveParquetInput } from './paths.js';
import { formatBytes, formatCount } from './summary.js';

export interface ConvertResult {
  input: string;
  output: string;
  format: 'csv' | 'xlsx';
  rows: number;
  columns: number;
  bytes: number;
  /** xlsx only: sheets written (a sheet holds at most 1,048,575 data rows). */
  sheets?: number;
  /** xlsx only: text cells cut to Excel's 32,767 characters. */
  truncated_cells?: number;
}

/** Excel's limits: rows per sheet (one is the header) and characters per cell. */
export const XLSX_MAX_DATA_ROWS = 1_048_575;
export const XLSX_MAX_CELL_CHARS = 32_767;

/** `--output` as given, else the input's name with the new extension in the current directory. */
function outputPath(file: string, output: string | undefined, ext: string, inputPath: string): string {
  const out = resolve(output ?? `${basename(file, extname(file))}.${ext}`);
  if (out === inputPath) throw new InvalidInputError(`output ${out} would overwrite the input`);
  return out;
}

/** `lake to-csv <file> [--output F]`: one DuckDB COPY, header row, timestamps in UTC. */
export async function lakeToCsv(ctx: CliContext, file: string, output?: string): Promise<ConvertResult> {
  const input = await resolveParquetInput(ctx, file);
  const out = outputPath(file, output, 'csv', input.path);
  const { conn } = await openCliDuckDB(ctx);
  const stats = await parquetFileStats(conn, input.path);
  await conn.run(
    `COPY (SELECT * FROM read_parquet(${sqlString(input.path)}, hive_partitioning = false))
     TO ${sqlString(out)} (FORMAT csv, HEADER true)`,
  );
  return {
    input: input.key ?? input.path,
    output: out,
    format: 'csv',
    rows: stats.rows,
    columns: stats.columns.length,
    bytes: (await stat(out)).size,
  };
}

type CellValue = string | number | boolean | Date | null;

/** How a column's JSON-safe values (readParquetRows) become cells, by DuckDB type. */
function cellWriter(type: string): {
  toCell: (v: ParquetValue, onTruncate: () => void) => CellValue;
  numFmt?: string;
} {
  const text = (s: string, onTruncate: () => void) => {
    if (s.length <= XLSX_MAX_CELL_CHARS) return s;
    onTruncate();
    return s.slice(0, XLSX_MAX_CELL_CHARS);
  };
  const generic = (v: ParquetValue, onTruncate: () => void): CellValue => {
    if (v === null || typeof v === 'number' || typeof v === 'boolean') return v;
    if (typeof v === 'string') return text(v, onTruncate);
    if (v instanceof Uint8Array) return text(Buffer.from(v).toString('hex'), onTruncate);
    return text(JSON.stringify(v), onTruncate); // lists, structs, maps
  };
  if (type.startsWith('TIMESTAMP')) {
    // Excel has no time zones: the UTC wall time is written, as the CSV export prints it.
    return {
      toCell: (v, t) => (typeof v === 'string' && !Number.isNaN(Date.parse(v)) ? new Date(v) : generic(v, t)),
      numFmt: 'yyyy-mm-dd hh:mm:ss',
    };
  }
  if (type === 'DATE') {
    return {
      toCell: (v, t) =>
        typeof v === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(v) ? new Date(`${v}T00:00:00Z`) : generic(v, t),
      numFmt: 'yyyy-mm-dd',
    };
  }
  return { toCell: generic };
}

/**
 * `lake to-xlsx <file> [--output F]`: a real .xlsx written with exceljs' streaming writer, so
 * memory holds one batch of rows, not the workbook. Rows beyond one sheet's limit continue on
 * `data_2`, `data_3`, …; timestamps and dates are date cells.
 */
export async function lakeToXlsx(ctx: CliContext, file: string, output?: string): Promise<ConvertResult> {
  const input = await resolveParquetInput(ctx, file);
  const out = outputPath(file, output, 'xlsx', input.path);
  const { conn } = await openCliDuckDB(ctx);
  const stats = await parquetFileStats(conn, input.path);
  const writers = stats.columns.map((c) => cellWriter(c.type));

  const wb = new ExcelJS.stream.xlsx.WorkbookWriter({
    filename: out,
    useStyles: true,
    useSharedStrings: false,
  });
  let sheet: ExcelJS.Worksheet | undefined;
  let sheets = 0;
  let inSheet = 0;
  let rows = 0;
  let truncated = 0;
  const onTruncate = () => {
    truncated++;
  };
  const newSheet = () => {
    sheet?.commit();
    sheets++;
    sheet = wb.addWorksheet(sheets === 1 ? 'data' : `data_${sheets}`);
    sheet.columns = stats.columns.map((c, i) => ({
      header: c.name,
      key: c.name,
      width: Math.min(40, Math.max(10, c.name.length + 2)),
      ...(writers[i]!.numFmt ? { style: { numFmt: writers[i]!.numFmt } } : {}),
    }));
    inSheet = 0;
  };
  newSheet();
  const bar = progress(stats.rows, 'to-xlsx');
  try {
    for await (const batch of readParquetRows(conn, [input.path])) {
      for (const r of batch) {
        if (inSheet >= XLSX_MAX_DATA_ROWS) newSheet();
        const values = stats.columns.map((c, i) => writers[i]!.toCell(r[c.name] ?? null, onTruncate));
        sheet!.addRow(values).commit();
        inSheet++;
        rows++;
      }
      bar.tick(batch.length);
    }
    sheet!.commit();
    await wb.commit();
  } catch (err) {
    await rm(out, { force: true }).catch(() => {});
    throw err;
  } finally {
    bar.finish();
  }
  return {
    input: input.key ?? input.path,
    output: out,
    format: 'xlsx',
    rows,
    columns: stats.columns.length,
    bytes: (await stat(out)).size,
    sheets,
    truncated_cells: truncated,
  };
}

export function printConvert(r: ConvertResult): void {
  const extra =
    r.format === 'xlsx'
      ? ` in ${r.sheets} sheet(s)${r.truncated_cells ? `, ${r.truncated_cells} long cells truncated` : ''}`
      : '';
  process.stdout.write(
    `wrote ${r.output}: ${formatCount(r.rows)} rows × ${r.columns} columns${extra}, ${formatBytes(r.bytes)}\n`,
  );
}
