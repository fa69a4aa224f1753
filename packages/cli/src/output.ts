import { ParquetryError } from '@parquetry/service';

/** JSON-safe: bigint → number when safe else string, Date → ISO. */
export function toJsonSafe(value: unknown): unknown {
  return JSON.parse(
    JSON.stringify(value, (_k, v) => {
      if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
      return v;
    }),
  );
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(toJsonSafe(value), null, 2)}\n`);
}

/** A plain text table, columns padded to their widest cell. */
export function printTable(rows: Record<string, unknown>[], columns?: string[]): void {
  if (rows.length === 0) {
    process.stdout.write('(no rows)\n');
    return;
  }
  const cols = columns ?? Object.keys(rows[0]!);
  const cell = (v: unknown) =>
    v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(toJsonSafe(v)) : String(v);
  const widths = cols.map((c) => Math.min(60, Math.max(c.length, ...rows.map((r) => cell(r[c]).length))));
  const line = (vals: string[]) => vals.map((v, i) => v.slice(0, widths[i]).padEnd(widths[i]!)).join('  ');
  process.stdout.write(`${line(cols)}\n${line(widths.map((w) => '-'.repeat(w)))}\n`);
  for (const r of rows) process.stdout.write(`${line(cols.map((c) => cell(r[c])))}\n`);
}

/** Print a result as JSON or through a human formatter. */
export function emit<T>(json: boolean, value: T, human: (v: T) => void): void {
  if (json) printJson(value);
  else human(value);
}

/** A progress bar on stderr, only when stdout is a terminal (never in pipes or --json). */
export function progress(total: number, label: string, enabled = process.stdout.isTTY === true) {
  let done = 0;
  const started = Date.now();
  const draw = () => {
    if (!enabled) return;
    const pct = total > 0 ? done / total : 1;
    const width = 30;
    const bar = '#'.repeat(Math.round(pct * width)).padEnd(width, '.');
    const rate = done / Math.max(0.001, (Date.now() - started) / 1000);
    process.stderr.write(`\r${label} [${bar}] ${done}/${total} ${rate.toFixed(0)}/s`);
  };
  return {
    tick(n = 1) {
      done += n;
      draw();
    },
    finish() {
      if (enabled) process.stderr.write('\n');
    },
  };
}

/** Exit codes: 1 for an error we explain, 2 for bad usage/input. */
export function reportError(err: unknown, json: boolean): number {
  const e =
    err instanceof ParquetryError
      ? { code: err.code, message: err.message, details: err.details }
      : { code: 'internal', message: err instanceof Error ? err.message : String(err) };
  if (json) process.stdout.write(`${JSON.stringify({ error: toJsonSafe(e) })}\n`);
  else process.stderr.write(`error: ${e.message}\n`);
  return err instanceof ParquetryError && err.status === 400 ? 2 : 1;
}
