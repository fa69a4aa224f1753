/**
 * The life of one e2e run, the same in every test: a NATS server (or the cluster the test gives),
 * a fresh PostgreSQL database, a scratch directory, the built services and a feed publisher —
 * started in order, always torn down, with the services' output tails printed when the test
 * fails.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { type Catalog, openCatalog } from '@parquetry/lake';
import {
  createTestDatabase,
  type NatsServerHandle,
  startNats,
  type TempDir,
  type TestDatabase,
  tempDir,
} from '@parquetry/testkit';
import { expect } from 'vitest';
import { type ExactCounts, expectExactlyOnce, waitForEverything } from './converge.js';
import { Publisher } from './feeds.js';
import { missingBuilds } from './procs.js';
import type { Feed } from './scenario.js';
import { type System, type SystemOptions, startSystem } from './system.js';

export interface RunOptions extends Omit<SystemOptions, 'natsUrl' | 'lakeUrl' | 'databaseUrl' | 'dir'> {
  /** Names the scratch directory. */
  name: string;
  /** A bus the test runs itself (a cluster's server list); default a private nats-server. */
  natsUrl?: string;
  /** A fresh PostgreSQL database (default true). */
  postgres?: boolean;
  /** Scratch directory the test owns and removes; default a new one, removed at the end. */
  dir?: string;
  /** Default `file://<dir>/lake`. */
  lakeUrl?: string;
}

export interface Run {
  started: number;
  /** The private nats-server (restartable); undefined when the test gave its own bus. */
  nats: NatsServerHandle | undefined;
  natsUrl: string;
  /** '' without PostgreSQL. */
  databaseUrl: string;
  dir: string;
  system: System;
  feed: Publisher;
  /** The catalog, read through the feed's connection. */
  catalog: Catalog;
  /** Rows of products and ticks live in the lake now. */
  lakeRows(): Promise<number>;
  /** Until the lake (and PostgreSQL, and the candles when they run) hold all of `f`; when. */
  converged(f: Feed): Promise<number>;
  /** `converged`, then every input checked exactly once everywhere it should be. */
  landed(f: Feed): Promise<{ at: number; counts: ExactCounts }>;
}

export async function withSystem(o: RunOptions, body: (run: Run) => Promise<void>): Promise<void> {
  expect(missingBuilds(), 'build first: npx -y pnpm@10 run build').toEqual([]);
  const { name, natsUrl: givenNats, postgres = true, dir: givenDir, lakeUrl, ...systemOptions } = o;
  const started = Date.now();
  let nats: NatsServerHandle | undefined;
  let db: TestDatabase | undefined;
  let tmp: TempDir | undefined;
  let system: System | undefined;
  let feed: Publisher | undefined;
  try {
    nats = givenNats ? undefined : await startNats();
    const natsUrl = givenNats ?? nats!.url;
    db = postgres ? await createTestDatabase() : undefined;
    tmp = givenDir ? undefined : tempDir(`pq-e2e-${name}-`);
    const dir = givenDir ?? tmp!.path;
    const databaseUrl = db?.url ?? '';
    const sys = await startSystem({
      ...systemOptions,
      natsUrl,
      lakeUrl: lakeUrl ?? `file://${dir}/lake`,
      databaseUrl,
      dir,
    });
    system = sys;
    const pub = await Publisher.connect(natsUrl);
    feed = pub;
    const catalog = await openCatalog({ nc: pub.nc, writerId: 'e2e-reader' });
    const candles = sys.of('candle-aggregator').length > 0;
    const converged = async (f: Feed) => {
      const expected = {
        products: f.expected.products,
        ticks: f.expected.ticks,
        ...(candles ? { candleKeys: f.expected.candleKeys } : {}),
      };
      const done = await waitForEverything({ catalog, databaseUrl, expected, system: sys });
      return done.at;
    };
    await body({
      started,
      nats,
      natsUrl,
      databaseUrl,
      dir,
      system: sys,
      feed: pub,
      catalog,
      converged,
      async lakeRows() {
        let rows = 0;
        for (const dataset of ['products', 'ticks'])
          for (const file of await catalog.liveFiles(dataset)) rows += file.rows;
        return rows;
      },
      async landed(f) {
        const at = await converged(f);
        const counts = await expectExactlyOnce({
          system: sys,
          ...(databaseUrl ? { databaseUrl } : {}),
          batches: f.batches,
          ticks: [...f.ticks, ...f.sentinels],
          ...(candles ? { symbols: f.symbols, lastRealTs: f.lastRealTs } : {}),
          ...(sys.of('export-api').length > 0 ? { exportDir: dir } : {}),
        });
        return { at, counts };
      },
    });
  } catch (err) {
    if (system) console.error(system.tails());
    if (feed) console.error(await consumerStates(feed).catch((e: Error) => `consumer states: ${e.message}`));
    if (feed) console.error(await commitHistory(feed).catch((e: Error) => `commit history: ${e.message}`));
    throw err;
  } finally {
    await feed?.close();
    if (system) await Promise.all(system.all.map((p) => p.kill9()));
    await nats?.stop();
    await db?.drop();
    tmp?.remove();
  }
}

/**
 * Every durable consumer's position and leader, for a failure message: which consumer stopped
 * short, and whether its messages wait on the server or in the client.
 */
async function consumerStates(feed: Publisher): Promise<string> {
  const jsm = await jetstreamManager(feed.nc);
  const lines: string[] = ['--- consumers ---'];
  for await (const s of jsm.streams.list()) {
    for await (const c of jsm.consumers.list(s.config.name)) {
      lines.push(
        `${s.config.name}/${c.name}: delivered ${c.delivered.stream_seq}, ack floor ${c.ack_floor.stream_seq}, ` +
          `pending ${c.num_pending}, ack pending ${c.num_ack_pending}, redelivered ${c.num_redelivered}, ` +
          `waiting pulls ${c.num_waiting}, leader ${c.cluster?.leader ?? '-'} (stream last seq ${s.state.last_seq})`,
      );
    }
  }
  return lines.join('\n');
}

/**
 * Every `lake.committed` event in the LAKE stream, one line each (dataset, operation, commit id,
 * files added with rows, files removed), and the files that are live now: which commit dropped
 * or never added the files of a count that came out short.
 */
async function commitHistory(feed: Publisher): Promise<string> {
  const jsm = await jetstreamManager(feed.nc);
  const info = await jsm.streams.info('LAKE');
  const lines: string[] = ['--- lake.committed events ---'];
  const name = (path: string) => path.split('/').slice(-2).join('/');
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage('LAKE', { seq }).catch(() => undefined);
    if (!m) continue;
    const e = m.json<{
      dataset: string;
      operation?: string;
      commit_id: string;
      partitions: { added: { path: string; rows: number }[]; removed: string[] }[];
    }>();
    const added = e.partitions.flatMap((p) => p.added.map((f) => `${name(f.path)}:${f.rows}`));
    const removed = e.partitions.flatMap((p) => p.removed.map(name));
    lines.push(
      `#${seq} ${e.dataset} ${e.operation ?? 'append'} ${e.commit_id} +[${added.join(' ')}] -[${removed.join(' ')}]`,
    );
  }
  const catalog = await openCatalog({ nc: feed.nc, writerId: 'e2e-reader' });
  for (const dataset of ['ticks', 'products']) {
    const live = await catalog.liveFiles(dataset);
    lines.push(`live ${dataset}: ${live.map((f) => `${name(f.path)}:${f.rows}`).join(' ')}`);
  }
  return lines.join('\n');
}

/** Seconds from `from` to `to` (default now), for the tests' one-line reports. */
export function secondsSince(from: number, to = Date.now()): string {
  return ((to - from) / 1000).toFixed(1);
}
