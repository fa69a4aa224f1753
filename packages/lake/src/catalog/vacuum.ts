import { DATASETS, getDataset } from '../datasets.js';
import type { ObjectStore } from '../store/types.js';
import type { Catalog } from './catalog.js';
import type { PartitionManifest } from './types.js';

export interface VacuumOptions {
  catalog: Catalog;
  store: ObjectStore;
  /** One dataset, or all of them. */
  dataset?: string;
  /**
   * Replaced files stay readable this long after their replacement (readers holding an older
   * snapshot), and a file nobody committed is left alone this long (a write still in progress).
   */
  graceMs: number;
  now?: Date;
  dryRun?: boolean;
}

export interface VacuumResult {
  dryRun: boolean;
  /** Replaced files past the grace period: deleted and dropped from their manifests. */
  expired: string[];
  /** Parquet files no manifest or commit in flight knows, older than the grace period: deleted. */
  orphans: string[];
  /** Bytes those files took. */
  bytes: number;
}

/** Every path the catalog references in a dataset: live, replaced, reserved or in a commit intent. */
function knownPaths(manifests: PartitionManifest[], inFlight: string[]): Set<string> {
  const known = new Set(inFlight);
  for (const m of manifests) {
    for (const f of m.files) known.add(f.path);
    for (const r of m.removed) known.add(r.path);
    for (const p of m.pending) for (const f of p.change.add) known.add(f.path);
  }
  return known;
}

/** Metadata (`_metadata_*.json`, `_tmp/`) and hidden files are never the sweep's business. */
function isSweepable(key: string): boolean {
  return (
    key.endsWith('.parquet') && !key.split('/').some((seg) => seg.startsWith('_') || seg.startsWith('.'))
  );
}

/**
 * Deletes what no snapshot needs any more: (a) files replaced longer than `graceMs` ago (first
 * dropped from the manifest by compare-and-set, then deleted, so a crash in between leaves an
 * orphan for the next run, never a manifest entry without its file), and (b) orphans, Parquet
 * files under a dataset that the catalog does not know and that are older than the grace period
 * (written, never committed). The store is listed before the catalog is read, so a file
 * committed meanwhile is seen as known.
 */
export async function vacuum(opts: VacuumOptions): Promise<VacuumResult> {
  const now = (opts.now ?? new Date()).getTime();
  const cutoff = now - opts.graceMs;
  const dryRun = opts.dryRun ?? false;
  const result: VacuumResult = { dryRun, expired: [], orphans: [], bytes: 0 };
  const datasets = opts.dataset ? [getDataset(opts.dataset)] : DATASETS;
  for (const def of datasets) {
    const objects = [];
    for await (const o of opts.store.list(`${def.root}/`)) if (isSweepable(o.key)) objects.push(o);
    const intents = (await opts.catalog.intents()).filter((i) => i.commit.dataset === def.name);
    const manifests = await opts.catalog.storedPartitions(def.name);
    const known = knownPaths(
      manifests,
      intents.flatMap((i) => i.commit.changes.flatMap((c) => c.add.map((f) => f.path))),
    );

    for (const m of manifests) {
      const live = new Set([
        ...m.files.map((f) => f.path),
        ...m.pending.flatMap((p) => p.change.add.map((f) => f.path)),
      ]);
      const expired = m.removed.filter((r) => Date.parse(r.removedAt) <= cutoff && !live.has(r.path));
      if (expired.length === 0) continue;
      let gone = expired;
      if (!dryRun) {
        const dropped = new Set(
          await opts.catalog.forgetRemoved(
            def.name,
            m.partition,
            expired.map((r) => r.path),
          ),
        );
        gone = expired.filter((r) => dropped.has(r.path));
        for (const r of gone) await opts.store.delete(r.path);
      }
      result.expired.push(...gone.map((r) => r.path));
      result.bytes += gone.reduce((n, r) => n + (r.bytes ?? 0), 0);
    }

    for (const o of objects) {
      if (known.has(o.key) || o.lastModified.getTime() > cutoff) continue;
      if (!dryRun) await opts.store.delete(o.key);
      result.orphans.push(o.key);
      result.bytes += o.size;
    }
  }
  result.expired.sort();
  result.orphans.sort();
  return result;
}
