import { Writable } from 'node:stream';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { isRetryable } from '@parquetry/service';
import { startNats } from '@parquetry/testkit';
import { pino } from 'pino';
import { expect, it } from 'vitest';
import { type Catalog, openCatalog } from './catalog.js';
import type { Commit } from './types.js';

const WORKERS = 4;
const COMMITS_PER_WORKER = 40;
const RESTART_AFTER = 60;

function commitNo(symbol: string, i: number): Commit {
  // Mostly appends to one partition; every 10th commit spans two days (intent + reservations).
  const dates = i % 10 === 9 ? ['2025-09-03', '2025-09-04'] : ['2025-09-03'];
  return {
    dataset: 'ticks',
    commitId: `${symbol}-${i}`,
    changes: dates.map((date) => ({
      partition: { symbol, date },
      add: [{ path: `ticks/symbol=${symbol}/date=${date}/${i}.parquet`, rows: 1, bytes: 1, sha256: 'x' }],
      sources: [`seq:${i}`],
    })),
  };
}

/** The caller's own loop: the same commit id until it goes through (what ingest does). */
async function commitUntilDone(catalog: Catalog, commit: Commit): Promise<number> {
  for (let retries = 0; ; retries++) {
    try {
      await catalog.commit(commit);
      return retries;
    } catch (err) {
      if (!isRetryable(err)) throw err;
    }
  }
}

it('resumes concurrent commit loops across a nats-server kill -9 and restart, losing and doubling nothing', async () => {
  await using server = await startNats();
  const nc = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  try {
    const logged: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        logged.push(String(chunk));
        done();
      },
    });
    const catalog = await openCatalog({
      nc,
      js: jetstream(nc, { timeout: 1000 }),
      writerId: 'loop',
      retryForMs: 20_000,
      logger: pino({ level: 'warn' }, sink),
    });
    let done = 0;
    let restarted: Promise<void> | undefined;
    let callerRetries = 0;
    const symbols = Array.from({ length: WORKERS }, (_, w) => `S${w}`);
    await Promise.all(
      symbols.map(async (symbol) => {
        for (let i = 0; i < COMMITS_PER_WORKER; i++) {
          if (++done === RESTART_AFTER) restarted = server.restart();
          callerRetries += await commitUntilDone(catalog, commitNo(symbol, i));
        }
      }),
    );
    await restarted;
    await catalog.recover();

    const files = (await catalog.liveFiles('ticks')).map((f) => f.path);
    expect(new Set(files).size).toBe(files.length);
    expect(files).toHaveLength(WORKERS * (COMMITS_PER_WORKER + COMMITS_PER_WORKER / 10));
    for (const symbol of symbols) {
      const day1 = await catalog.partition('ticks', { symbol, date: '2025-09-03' });
      expect(day1.commits).toEqual(Array.from({ length: COMMITS_PER_WORKER }, (_, i) => `${symbol}-${i}`));
    }
    expect(await catalog.intents()).toEqual([]);
    expect(callerRetries).toBeLessThan(5);
    // The restart did interrupt the loops: the catalog retried through it.
    expect(logged.some((l) => l.includes('"msg":"retry"'))).toBe(true);
  } finally {
    await nc.close();
  }
});
