import { mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { watchDiskFree } from './disk-free.js';
import { Metrics } from './metrics.js';

describe('watchDiskFree', () => {
  it('reports the free bytes of each directory under its label, and skips one that is missing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pq-disk-'));
    const metrics = new Metrics('test', { defaults: false });
    const stop = watchDiskFree(metrics, { lake: dir, gone: join(dir, 'not-yet') }, 50);
    try {
      await new Promise((r) => setTimeout(r, 200));
      const values = (await metrics.registry.getSingleMetric('parquetry_disk_free_bytes')!.get()).values;
      expect(values.map((v) => v.labels.path)).toEqual(['lake']);
      const s = statfsSync(dir);
      const expected = s.bavail * s.bsize;
      // Other processes write meanwhile: within 1% of what statfs says now.
      expect(Math.abs(values[0]!.value - expected)).toBeLessThan(expected / 100 + 1);
      expect(values[0]!.value).toBeGreaterThan(0);
    } finally {
      stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
