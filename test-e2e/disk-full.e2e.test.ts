/**
 * The lake's disk full during Parquet writes: ingest-backup's lake and its temporary directory
 * (where DuckDB writes the Parquet file before it moves into the lake) sit on a 20 MB tmpfs (or
 * a loop-mounted ext4 image) that a filler file then fills. Writes fail with ENOSPC, the flushes
 * are retried (nak), nothing is committed or acknowledged meanwhile, and no partial file is ever
 * visible in the lake. Once space is freed everything lands exactly once.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { join, relative } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { requireServers, tempDir } from '@parquetry/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { openDuck } from './lib/checks.js';
import { sleep, waitFor } from './lib/procs.js';
import { secondsSince, withSystem } from './lib/run.js';
import { feedInParts, smallFeed } from './lib/scenario.js';

const skip = await requireServers({ nats: true });
const SIZE_MB = 20;

/** A size-limited directory: tmpfs, else a loop-mounted ext4 image; undefined when neither works. */
function mountSmall(dir: string, scratch: string): { how: string; unmount(): void } | undefined {
  mkdirSync(dir, { recursive: true });
  const run = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8' }).status === 0;
  const unmount = () => {
    spawnSync('umount', ['-l', dir]);
  };
  if (run('mount', ['-t', 'tmpfs', '-o', `size=${SIZE_MB}m`, 'tmpfs', dir])) return { how: 'tmpfs', unmount };
  const img = join(scratch, 'small.img');
  if (
    run('truncate', ['-s', `${SIZE_MB}M`, img]) &&
    run('mkfs.ext4', ['-q', '-F', img]) &&
    run('mount', ['-o', 'loop', img, dir])
  ) {
    return { how: 'loop ext4', unmount };
  }
  return undefined;
}

/** Fills the filesystem of `file` until ENOSPC; returns the bytes written. */
function fill(file: string): number {
  const fd = openSync(file, 'w');
  let written = 0;
  try {
    for (const size of [1 << 20, 64 << 10, 4 << 10, 512]) {
      const buf = Buffer.alloc(size, 1);
      for (;;) {
        try {
          written += writeSync(fd, buf);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw err;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return written;
}

function parquetFiles(root: string, dir = root): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name.startsWith('_')) continue; // metadata and the store's own _tmp: not lake data
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...parquetFiles(root, p));
    else if (e.name.endsWith('.parquet')) out.push(relative(root, p));
  }
  return out;
}

const scratch = tempDir('pq-e2e-diskfull-');
const small = join(scratch.path, 'small');
const mounted = skip ? undefined : mountSmall(small, scratch.path);
if (!mounted) scratch.remove();
const reason =
  skip ?? (mounted ? undefined : 'cannot mount a size-limited directory (needs root: tmpfs or loop)');
if (reason && process.env.CI === 'true' && !skip) throw new Error(`${reason} (CI=true: refusing to skip)`);

describe.skipIf(reason)('disk full during Parquet writes', () => {
  afterAll(() => {
    mounted?.unmount();
    scratch.remove();
  });
  it('naks and retries, shows no partial file, and lands everything once space is back', async () => {
    const lakeDir = join(small, 'lake');
    const tmpDir = join(small, 'tmp');
    mkdirSync(tmpDir, { recursive: true });
    const filler = join(small, 'filler');
    const options = {
      name: 'diskfull',
      postgres: false,
      dir: scratch.path,
      lakeUrl: `file://${lakeDir}`,
      instances: 1,
      only: ['ingest-backup'] as const,
      // DuckDB writes each Parquet file under the OS temp directory first: put it on the small disk.
      serviceEnv: { 'ingest-backup': { TMPDIR: tmpDir } },
    };
    try {
      await withSystem(options, async ({ started, system, feed, catalog, lakeRows, landed }) => {
        const jsm = await jetstreamManager(feed.nc);
        const f = smallFeed();
        const acked = async () => {
          let n = 0;
          for (const stream of ['PRODUCTS', 'TICKS'])
            for await (const c of jsm.consumers.list(stream)) n += c.ack_floor.stream_seq;
          return n;
        };
        const duck = await openDuck();
        /**
         * Every Parquet file a reader of the directory can see is whole (DuckDB reads it). With
         * `settled`, each is also live in the catalog: a failed flush removes what it had put.
         */
        const checkVisible = async (settled: boolean) => {
          const live = new Set(
            [...(await catalog.liveFiles('products')), ...(await catalog.liveFiles('ticks'))].map(
              (x) => x.path,
            ),
          );
          const visible = parquetFiles(lakeDir);
          let vanished = 0;
          for (const v of visible) {
            if (settled) expect(live.has(v), `${v} is visible but not live in the catalog`).toBe(true);
            const path = join(lakeDir, v);
            try {
              await duck.rows(`SELECT count(*) FROM read_parquet('${path}')`);
            } catch (err) {
              // A failed flush removing its files between the listing and the read: gone, not partial.
              if (settled || existsSync(path)) throw err;
              vanished++;
            }
          }
          return {
            visible: visible.length - vanished,
            uncommitted: visible.filter((v) => !live.has(v)).length - vanished,
          };
        };

        // Three parts, in order: the first lands on a roomy disk; the second arrives after the disk
        // is full, so its flushes must fail (whatever the machine's speed); the third and the
        // sentinels arrive once space is back.
        const parts = feedInParts(feed, f, 3);
        let retries = 0;
        const publishPart = async (i: number) => {
          retries += await parts.publish(i);
        };

        await publishPart(0);
        await waitFor(
          'the first part to land',
          async () => ((await lakeRows()) > 0 ? true : undefined),
          30_000,
        );
        const warned = system.all[0]!.warned(/flush_failed/);
        const filled = fill(filler);
        await sleep(2000); // a flush already past its writes may still commit
        await publishPart(1);
        await waitFor(
          'a flush to fail on the full disk',
          () => (system.all[0]!.warned(/flush_failed/) > warned ? true : undefined),
          60_000,
        );
        // Nothing is acknowledged that is not committed. (The disk is not frozen solid: a failed
        // flush deletes the files it had put, and a small write may fit in that space.)
        const frozen = { rows: await lakeRows(), acked: await acked() };
        let checks = 0;
        let uncommittedSeen = 0;
        for (let i = 0; i < 8; i++) {
          await sleep(1000);
          const now = { rows: await lakeRows(), acked: await acked() };
          if (now.acked > frozen.acked)
            expect(now.rows, 'acked without a commit').toBeGreaterThan(frozen.rows);
          uncommittedSeen += (await checkVisible(false)).uncommitted;
          checks++;
        }
        const failedFlushes = system.all[0]!.warned(/flush_failed/) - warned;
        rmSync(filler);
        await publishPart(2);
        retries += await parts.sentinels();
        expect(failedFlushes, 'writes failed on the full disk').toBeGreaterThan(0);
        const freedAt = Date.now();
        const converged = await landed(f);
        const { visible } = await checkVisible(true);
        duck.close();
        const { counts } = converged;
        const dead = (await jsm.streams.info('DLQ').catch(() => undefined))?.state.messages ?? 0;
        expect(dead).toBe(0);
        console.log(
          `e2e disk full (${mounted!.how} ${SIZE_MB} MB): filled with ${(filled / 1e6).toFixed(1)} MB after the first third of the feed; ` +
            `${failedFlushes} failed flushes on the second third, naked and retried, lake rows ${frozen.rows} and ack floor ${frozen.acked} when full, ` +
            `${checks} checks of the visible files (all whole; ${uncommittedSeen} sightings of a not yet removed uncommitted file); after freeing the space ` +
            `${counts.lakeProducts} products (${f.batches.length} batches) and ${counts.lakeTicks} ticks exactly once ` +
            `in ${visible} visible files, ${dead} dead letters, crashes ${system.all[0]!.crashes}, ${retries} publish retries; ` +
            `caught up ${secondsSince(freedAt, converged.at)} s after, total ${secondsSince(started)} s`,
        );
      });
    } finally {
      rmSync(filler, { force: true });
    }
  }, 180_000);
});
