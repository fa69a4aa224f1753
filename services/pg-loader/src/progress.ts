/**
 * Terminal rendering of a load: a one-line progress bar with rows/s (only on a TTY) and the
 * closing summary. Pure formatting functions plus a tiny writer, so the CLI just wires them.
 */
import type { LoadResult } from './load.js';
import type { LoadProgress } from './pipeline.js';

function compact(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e7 ? 0 : 1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(n >= 1e4 ? 0 : 1)}k`;
  return String(Math.round(n));
}

function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** `[########------------]  42% 8.4M/20M rows  1.1M rows/s  0:07 ETA 0:10  rejected 3  212 MB` */
export function formatProgressLine(p: LoadProgress, width = 24): string {
  const ratio = p.totalRows > 0 ? Math.min(1, p.rows / p.totalRows) : 0;
  const filled = Math.round(ratio * width);
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
  const pct = `${String(Math.floor(ratio * 100)).padStart(3)}%`;
  const total = `${p.totalExact ? '' : '~'}${compact(p.totalRows)}`;
  const eta =
    p.rowsPerSecond > 0 && ratio < 1 ? ` ETA ${duration((p.totalRows - p.rows) / p.rowsPerSecond)}` : '';
  const rejected = p.rejected > 0 ? `  rejected ${compact(p.rejected)}` : '';
  return `${bar} ${pct} ${compact(p.rows)}/${total} rows  ${compact(p.rowsPerSecond)} rows/s  ${duration(p.elapsedSeconds)}${eta}${rejected}  ${Math.round(p.rssMb)} MB`;
}

/** An onProgress callback drawing on `out` when it is a terminal (nothing otherwise). */
export function terminalProgress(out: NodeJS.WriteStream = process.stderr): {
  onProgress: (p: LoadProgress) => void;
  done: () => void;
} {
  let drawn = false;
  return {
    onProgress: (p) => {
      if (!out.isTTY) return;
      const line = formatProgressLine(p).slice(0, Math.max(20, (out.columns ?? 120) - 1));
      out.write(`\r${line}\x1b[K`);
      drawn = true;
    },
    done: () => {
      if (drawn) out.write('\n');
      drawn = false;
    },
  };
}

/** The closing report: rows, rejects, time, speed, peak memory, and the strategy with its reason. */
export function formatLoadSummary(r: LoadResult): string {
  const lines = [
    `loaded ${r.loaded.toLocaleString('en-US')} of ${r.rows.toLocaleString('en-US')} rows into ${r.table} in ${r.seconds.toFixed(1)} s (${compact(r.rowsPerSecond)} rows/s), peak RSS ${Math.round(r.peakRssMb)} MB`,
    `strategy: ${r.strategy} — ${r.reason}`,
  ];
  if (r.rejected > 0) lines.push(`rejected ${r.rejected.toLocaleString('en-US')} rows → ${r.rejectsTarget}`);
  if (r.skippedFiles.length > 0) lines.push(`skipped ${r.skippedFiles.length} file(s) already loaded`);
  return lines.join('\n');
}
