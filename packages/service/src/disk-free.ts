import { statfs } from 'node:fs/promises';
import type { Metrics } from './metrics.js';

/**
 * Keeps `parquetry_disk_free_bytes{path}` current for the directories a service writes to (the
 * filesystem lake, its temporary files): the seed's "free disk under 1 GB" alert, seen from the
 * service itself. `paths` maps a stable label (e.g. `lake`, `tmp`) to a directory; one that
 * cannot be read is skipped until it can. Returns a stop function.
 */
export function watchDiskFree(
  metrics: Metrics,
  paths: Record<string, string>,
  intervalMs = 15_000,
): () => void {
  const gauge = metrics.gauge(
    'parquetry_disk_free_bytes',
    'Free bytes on the filesystem of a directory the service writes to',
    ['path'],
  );
  const update = async () => {
    for (const [label, dir] of Object.entries(paths)) {
      try {
        const s = await statfs(dir);
        gauge.set({ path: label }, Number(s.bavail) * Number(s.bsize));
      } catch {
        // not there yet (a lake directory is created on first write)
      }
    }
  };
  void update();
  const timer = setInterval(() => void update(), intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
