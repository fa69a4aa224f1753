import { ConflictError, InvalidInputError } from '@parquetry/service';
import { describe, expect, it } from 'vitest';
import { prepareCommit } from './commit-input.js';
import {
  applyChange,
  checkChange,
  emptyManifest,
  MAX_COMMITS,
  reserveChange,
  settleSnapshot,
  staleLinks,
} from './manifest.js';
import type { NewFile, PartitionChange, PartitionManifest } from './types.js';

const NOW = '2026-11-21T10:00:00.000Z';
const P = { symbol: 'ES', date: '2025-09-03' };
const file = (name: string, rows = 10): NewFile => ({
  path: `ticks/symbol=ES/date=2025-09-03/${name}.parquet`,
  rows,
  bytes: rows * 100,
  sha256: 'a'.repeat(64),
});
const apply = (m: PartitionManifest, commitId: string, change: Omit<PartitionChange, 'partition'>) => {
  const c = { partition: P, ...change };
  checkChange(m, commitId, c);
  return applyChange(m, { commitId, change: c, now: NOW });
};

describe('applyChange', () => {
  it('adds stamped files, moves replaced files to removed and records the commit and sources', () => {
    let m = apply(emptyManifest('ticks', P, NOW), 'c1', {
      add: [file('a'), file('b')],
      sources: ['s1', 's2'],
    });
    m = apply(m, 'c2', {
      add: [file('ab', 20)],
      remove: [file('a').path, file('b').path],
      forgetSources: ['s1'],
    });
    expect(m.files.map((f) => [f.path, f.commitId])).toEqual([[file('ab').path, 'c2']]);
    expect(m.removed.map((r) => [r.path, r.commitId, r.bytes])).toEqual([
      [file('a').path, 'c2', 1000],
      [file('b').path, 'c2', 1000],
    ]);
    expect(m.commits).toEqual(['c1', 'c2']);
    expect(m.sources).toEqual(['s2']);
  });

  it('takes a restored path off the removed list so vacuum never deletes a live file', () => {
    let m = apply(emptyManifest('ticks', P, NOW), 'c1', { add: [file('a')] });
    m = apply(m, 'c2', { add: [file('b')], remove: [file('a').path] });
    m = apply(m, 'c3', { add: [file('a')], remove: [file('b').path] });
    expect(m.files.map((f) => f.path)).toEqual([file('a').path]);
    expect(m.removed.map((r) => r.path)).toEqual([file('b').path]);
  });

  it('keeps only the last MAX_COMMITS commit ids', () => {
    let m = emptyManifest('ticks', P, NOW);
    for (let i = 0; i < MAX_COMMITS + 5; i++)
      m = applyChange(m, { commitId: `c${i}`, change: { partition: P, add: [] }, now: NOW });
    expect(m.commits).toHaveLength(MAX_COMMITS);
    expect(m.commits[0]).toBe('c5');
  });
});

describe('checkChange', () => {
  const base = apply(emptyManifest('ticks', P, NOW), 'c1', { add: [file('a'), file('b')] });

  it('rejects removing a file that is no longer live', () => {
    const m = apply(base, 'c2', { add: [file('ab')], remove: [file('a').path, file('b').path] });
    expect(() => checkChange(m, 'c3', { partition: P, add: [file('x')], remove: [file('a').path] })).toThrow(
      ConflictError,
    );
  });

  it('rejects adding a path that is already live, and removing a path another commit reserved', () => {
    expect(() => checkChange(base, 'c2', { partition: P, add: [file('a')] })).toThrow(/already live/);
    const reserved = reserveChange(
      base,
      {
        commitId: 'multi',
        writerId: 'w',
        partitions: ['k1', 'k2'],
        change: { partition: P, add: [], remove: [file('a').path] },
      },
      NOW,
    );
    expect(() =>
      checkChange(reserved, 'c2', { partition: P, add: [file('z')], remove: [file('a').path] }),
    ).toThrow(/reserved by commit multi/);
    // Appends never conflict with a reservation.
    expect(() => checkChange(reserved, 'c2', { partition: P, add: [file('z')] })).not.toThrow();
  });
});

describe('reader snapshot across partitions', () => {
  const P2 = { symbol: 'ES', date: '2025-09-04' };
  const f2 = (name: string): NewFile => ({
    ...file(name),
    path: `ticks/symbol=ES/date=2025-09-04/${name}.parquet`,
  });
  const keys = ['kA', 'kB'];
  const changeA: PartitionChange = { partition: P, add: [file('a')] };
  const changeB: PartitionChange = { partition: P2, add: [f2('b')] };
  const pending = (change: PartitionChange) => ({ commitId: 'm1', writerId: 'w', partitions: keys, change });
  const emptyA = emptyManifest('ticks', P, NOW);
  const emptyB = emptyManifest('ticks', P2, NOW);
  const appliedA = applyChange(reserveChange(emptyA, pending(changeA), NOW), {
    commitId: 'm1',
    change: changeA,
    now: NOW,
    linkedPartitions: keys,
  });

  it('shows a commit applied in one partition and reserved in another in both', () => {
    const reservedB = reserveChange(emptyB, pending(changeB), NOW);
    const snap = new Map([
      ['kA', appliedA],
      ['kB', reservedB],
    ]);
    expect(staleLinks(snap)).toEqual([]);
    const files = settleSnapshot(snap).flatMap((m) => m.files.map((f) => f.path));
    expect(files.sort()).toEqual([file('a').path, f2('b').path]);
  });

  it('shows a commit reserved everywhere and applied nowhere in none', () => {
    const snap = new Map([
      ['kA', reserveChange(emptyA, pending(changeA), NOW)],
      ['kB', reserveChange(emptyB, pending(changeB), NOW)],
    ]);
    expect(settleSnapshot(snap).flatMap((m) => m.files)).toEqual([]);
  });

  it('asks to re-read a partition that was read before the commit reached it, or not read at all', () => {
    expect(
      staleLinks(
        new Map([
          ['kA', appliedA],
          ['kB', emptyB],
        ]),
      ),
    ).toEqual(['kB']);
    expect(staleLinks(new Map([['kA', appliedA]]))).toEqual(['kB']);
  });
});

describe('prepareCommit', () => {
  it('stamps files and keeps only partition columns', () => {
    const { commit, targets } = prepareCommit(
      { dataset: 'ticks', commitId: 'c1', changes: [{ partition: P, add: [file('a')] }] },
      NOW,
    );
    expect(targets[0]!.path).toBe('symbol=ES/date=2025-09-03');
    expect(targets[0]!.key).toMatch(/^m\.ticks\.[0-9a-f]{32}$/);
    expect(commit.changes[0]!.add[0]).toMatchObject({ commitId: 'c1', committedAt: NOW });
  });

  it('rejects files outside their partition, metadata names, unknown columns and bad ids', () => {
    const bad =
      (change: Partial<PartitionChange>, commitId = 'c1') =>
      () =>
        prepareCommit({ dataset: 'ticks', commitId, changes: [{ partition: P, add: [], ...change }] }, NOW);
    expect(bad({ add: [{ ...file('a'), path: 'ticks/symbol=ES/date=2025-09-04/a.parquet' }] })).toThrow(
      InvalidInputError,
    );
    expect(bad({ add: [{ ...file('a'), path: 'ticks/symbol=ES/date=2025-09-03/../x.parquet' }] })).toThrow(
      InvalidInputError,
    );
    expect(
      bad({ add: [{ ...file('a'), path: 'ticks/symbol=ES/date=2025-09-03/_metadata.parquet' }] }),
    ).toThrow(InvalidInputError);
    expect(bad({ add: [{ ...file('a'), path: 'ticks/symbol=ES/date=2025-09-03/a.json' }] })).toThrow(
      InvalidInputError,
    );
    expect(bad({ partition: { ...P, retailer: 'x' } })).toThrow(/partitioned by symbol, date/);
    expect(bad({}, 'has space')).toThrow(/bad commit id/);
    expect(() => prepareCommit({ dataset: 'nope', commitId: 'c', changes: [] }, NOW)).toThrow(
      /valid: products/,
    );
  });
});
