import type { FileEntry } from '@parquetry/lake';
import { describe, expect, it } from 'vitest';
import { fileSizeLimit, MB, needsCompaction, planCompaction } from './compact-plan.js';

const file = (path: string, mb: number, rows: number, minTime?: string): FileEntry => ({
  path,
  bytes: Math.round(mb * MB),
  rows,
  sha256: 'x',
  committedAt: '2025-09-03T00:00:00Z',
  commitId: 'c',
  ...(minTime ? { minTime } : {}),
});

describe('planCompaction', () => {
  it('merges only the small files, oldest data first, into ⌈bytes / target⌉ outputs', () => {
    const files = [
      file('c', 10, 30, '2025-09-03T03:00:00Z'),
      file('big', 200, 1000),
      file('a', 50, 100, '2025-09-03T01:00:00Z'),
      file('b', 100, 200, '2025-09-03T02:00:00Z'),
    ];
    const sel = planCompaction(files, { targetBytes: 128 * MB, minFileCount: 2, maxFileBytes: 128 * MB })!;
    expect(sel.merge.map((f) => f.path)).toEqual(['a', 'b', 'c']);
    expect(sel.rows).toBe(330);
    expect(sel.outputs).toBe(2);
  });

  it('does nothing below the minimum file count, and never for a single file', () => {
    const files = [file('a', 1, 1), file('b', 1, 1), file('big', 500, 1)];
    expect(
      planCompaction(files, { targetBytes: 128 * MB, minFileCount: 3, maxFileBytes: 128 * MB }),
    ).toBeUndefined();
    expect(
      planCompaction([file('a', 1, 1)], { targetBytes: 128 * MB, minFileCount: 1, maxFileBytes: 128 * MB }),
    ).toBeUndefined();
  });
});

describe('the policy test and output sizing', () => {
  it('needs more than N small files', () => {
    const files = [file('a', 1, 1), file('b', 1, 1), file('c', 1, 1), file('big', 64, 1)];
    expect(needsCompaction(files, 32 * MB, 3)).toBe(false);
    expect(needsCompaction(files, 32 * MB, 2)).toBe(true);
  });

  it('splits evenly a little under the share, with no limit for one output', () => {
    expect(fileSizeLimit(300 * MB, 1)).toBeUndefined();
    const limit = fileSizeLimit(300 * MB, 3)!;
    expect(limit).toBeLessThan(100 * MB);
    expect(limit).toBeGreaterThan(90 * MB);
  });
});
