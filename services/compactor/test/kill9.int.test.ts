import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { connectBus, ensureStreams, publishJson, subjects } from '@parquetry/bus';
import { silentLogger } from '@parquetry/service';
import { type NatsServerHandle, requireServers, startNats } from '@parquetry/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CRASH_POINTS } from '../src/engine/crash.js';
import { runOperation } from '../src/engine/run.js';
import {
  addTicksFile,
  type Lake,
  listKeys,
  openLake,
  sameTotals,
  snapshotTable,
  snapshotTotals,
} from './harness.js';

const skip = await requireServers({ nats: true });
const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

function startService(env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, [MAIN], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
}

function exited(p: ChildProcess): Promise<NodeJS.Signals | number | null> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve(p.signalCode ?? p.exitCode);
  return new Promise((r) => p.once('exit', (code, signal) => r(signal ?? code)));
}

async function kill9(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const done = exited(p);
  p.kill('SIGKILL');
  await done;
}

describe.skipIf(skip)('kill -9 of the compactor at every crash point', () => {
  let nats: NatsServerHandle;
  let lake: Lake;
  beforeAll(async () => {
    nats = await startNats();
    lake = await openLake('fs', nats.url, undefined, { catalogBucket: 'lake_catalog' });
  });
  afterAll(async () => {
    await lake?.close();
    await nats?.stop();
  });

  it('leaves the previous state readable; after restart and vacuum nothing is lost and nothing is orphaned', async () => {
    expect(existsSync(MAIN), 'build the service first (pnpm build)').toBe(true);
    // Seeds 1..10 in two partitions: each delete below removes one seed's rows from both, so
    // every job is a multi-partition commit and passes every crash point.
    for (const date of ['2025-09-03', '2025-09-04'])
      for (let s = 1; s <= CRASH_POINTS.length + 2; s++) await addTicksFile(lake, 'ES', date, 150, s);
    await snapshotTable(lake, 'ticks', 'ref');
    const client = await connectBus({ url: nats.url, name: 'kill9-client', logger: silentLogger() });
    await ensureStreams(client.jsm);
    const results: Record<string, unknown>[] = [];
    const sub = client.nc.subscribe('lake.results.>', {
      callback: (_e, m) => {
        results.push(m.json());
      },
    });
    const env = {
      ...lake.env,
      HTTP_PORT: '0',
      LOG_LEVEL: 'error',
      INSTANCE_ID: 'compactor-k9',
      WORK_DIR: `${lake.scratch}/service`,
      POLICY_ENABLED: 'false',
      JOB_ACK_WAIT_MS: '1000',
      DUCKDB_MEMORY_LIMIT: '256MB',
    };
    try {
      for (const [i, point] of CRASH_POINTS.entries()) {
        const seed = i + 1;
        const before = await snapshotTotals(lake, 'ticks', 'price');
        await lake.conn.run(`DELETE FROM ref WHERE trade_id LIKE 's${seed}-%'`);
        const after = await lake.conn.runAndReadAll(
          `SELECT count(*)::BIGINT AS n, sum(price)::DOUBLE AS s FROM ref`,
        );
        const expected = after.getRowObjectsJS()[0] as { n: bigint; s: number };
        const afterTotals = { rows: Number(expected.n), sum: expected.s };

        const crashing = startService({ ...env, COMPACTOR_CRASH_AT: point });
        const opId = `k9-${point}`;
        await publishJson(client.js, subjects.lakeOps('delete'), {
          op_id: opId,
          dataset: 'ticks',
          filters: [{ column: 'trade_id', op: 'like', value: `s${seed}-%` }],
          backup: true,
        });
        const how = await Promise.race([
          exited(crashing),
          new Promise((r) => setTimeout(() => r('timeout'), 30_000)),
        ]);
        if (how === 'timeout') await kill9(crashing);
        expect(how, `crash point ${point}`).toBe('SIGKILL');

        // Right after the kill: a reader sees the state before or after the job, every live file there.
        const now = await snapshotTotals(lake, 'ticks', 'price');
        expect(
          sameTotals(now, before) || sameTotals(now, afterTotals),
          `${point}: ${JSON.stringify({ now, before, afterTotals })}`,
        ).toBe(true);

        // Restart: the job comes back (never acked), the instance recovers its intent and finishes.
        const restarted = startService(env);
        const deadline = Date.now() + 30_000;
        while (!results.some((r) => r.op_id === opId) && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 50));
        await kill9(restarted);
        const result = results.find((r) => r.op_id === opId);
        expect(result?.status, `${point}: ${JSON.stringify(result)}`).toMatch(
          /^(committed|already_committed)$/,
        );
        expect(sameTotals(await snapshotTotals(lake, 'ticks', 'price'), afterTotals), point).toBe(true);
        // No intent of the instance is left behind.
        expect(await lake.catalog.intents('compactor-k9')).toEqual([]);
      }

      // Vacuum with no grace: every file the store holds under ticks/ is a live file.
      await runOperation(lake.ctx, 'vacuum', { dataset: 'ticks', grace_minutes: 0 });
      const live = (await lake.catalog.liveFiles('ticks')).map((f) => f.path).sort();
      expect(await listKeys(lake.store, 'ticks/')).toEqual(live);
      await snapshotTable(lake, 'ticks', 'got');
      const diff = await lake.conn.runAndReadAll(
        `SELECT (SELECT count(*) FROM (SELECT * FROM ref EXCEPT ALL SELECT * FROM got)) + (SELECT count(*) FROM (SELECT * FROM got EXCEPT ALL SELECT * FROM ref)) AS d`,
      );
      expect(Number((diff.getRowObjectsJS()[0] as { d: bigint }).d)).toBe(0);
    } finally {
      sub.unsubscribe();
      await client.close();
    }
  });
});
