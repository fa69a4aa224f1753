import { type NatsServerHandle, requireServers, startNats } from '@parquetry/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpResult } from '../src/domain/report.js';
import { runOperation } from '../src/engine/run.js';
import { addTicksFile, type Lake, openLake, snapshotTotals } from './harness.js';

const skip = await requireServers({ nats: true });

describe.skipIf(skip)('bounded memory', () => {
  let nats: NatsServerHandle;
  let lake: Lake;
  beforeAll(async () => {
    nats = await startNats();
    lake = await openLake('fs', nats.url, undefined, { memoryLimit: '48MB' });
  });
  afterAll(async () => {
    await lake?.close();
    await nats?.stop();
  });

  it('compacts and updates a partition several times larger than DuckDB memory_limit', async () => {
    const settings = await lake.conn.runAndReadAll(
      `SELECT current_setting('memory_limit') AS m, current_setting('temp_directory') AS t`,
    );
    const s = settings.getRowObjectsJS()[0] as { m: string; t: string };
    expect(s.m).toMatch(/^4\d(\.\d+)? MiB$|^4\d(\.\d+)? MB$/);
    expect(s.t).toContain('duckdb');

    for (let i = 0; i < 3; i++) await addTicksFile(lake, 'ES', '2025-09-03', 1_200_000, i + 1);
    const before = await snapshotTotals(lake, 'ticks', 'price');
    const sizeBefore = await snapshotTotals(lake, 'ticks', 'size');
    // 3.6M rows × 8 columns: about 200 MB in DuckDB's vectors, against a 48 MB budget.
    const compact = (await runOperation(lake.ctx, 'compact', {
      dataset: 'ticks',
      target_file_size_mb: 1024,
    })) as OpResult;
    expect(compact.status).toBe('committed');
    expect(compact.partitions[0]!.files_after).toBe(1);
    expect(await snapshotTotals(lake, 'ticks', 'price')).toEqual(before);

    const update = (await runOperation(lake.ctx, 'update', {
      dataset: 'ticks',
      filters: [{ column: 'side', op: '=', value: 'buy' }],
      set: { size: { op: '+', args: [{ column: 'size' }, { value: 1 }] } },
    })) as OpResult;
    expect(update.status).toBe('committed');
    const after = await snapshotTotals(lake, 'ticks', 'size');
    expect(after.rows).toBe(sizeBefore.rows);
    expect(after.sum).toBeCloseTo(sizeBefore.sum + update.totals.rows_updated!, 3);
    expect(update.totals.rows_updated).toBeGreaterThan(1_000_000);
  });
});
