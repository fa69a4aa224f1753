import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sha256File, sqlString } from '@parquetry/lake';
import { freePort, requireServers } from '@parquetry/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestLake, type TestKeys, type TestLake, writeKeys } from './lake-fixture.js';

// The built service (dist/main.js) as a process: configuration from the environment, /health
// over real HTTP, an export much larger than the memory the process is given (a 64 MB V8 heap
// and a 128 MB DuckDB memory limit) with its peak RSS measured, and a graceful SIGTERM.
const skip = await requireServers({ nats: true });
const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const BIG_ROWS = 3_500_000;
const HEAP_MB = 64;
const DUCKDB_MB = 128;

interface Started {
  proc: ChildProcess;
  lines: Record<string, unknown>[];
  exited: Promise<number | null>;
}

function startService(env: Record<string, string>, args: string[] = []): Started {
  const proc = spawn(process.execPath, [...args, MAIN], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  let buf = '';
  proc.stdout!.on('data', (chunk: Buffer) => {
    buf += chunk.toString('utf8');
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        lines.push({ raw: line });
      }
    }
  });
  let stderr = '';
  proc.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString('utf8');
  });
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => {
      if (code !== 0 && stderr) lines.push({ stderr });
      resolve(code);
    }),
  );
  return { proc, lines, exited };
}

async function waitFor<T>(
  what: string,
  f: () => T | undefined | Promise<T | undefined>,
  ms = 30_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

describe.skipIf(skip)('export-api as a process (dist/main.js)', () => {
  let lake: TestLake;
  let keys: TestKeys;
  let service: Started | undefined;
  let base: string;

  beforeAll(async () => {
    expect(existsSync(MAIN), 'build the service first (pnpm build)').toBe(true);
    lake = await openTestLake('fs');
    keys = writeKeys(lake.dir.path);
    // One big ticks file, written by DuckDB straight into the lake and committed to the catalog.
    const key = 'ticks/symbol=BIG/date=2025-09-01/big.parquet';
    const path = join(lake.dir.path, 'lake', key);
    await lake.duck.conn.run(`CREATE OR REPLACE TABLE big AS
      SELECT 'BIG' AS symbol, DATE '2025-09-01' AS date,
        TIMESTAMPTZ '2025-09-01 00:00:00+00' + to_microseconds(i * 10) AS ts,
        5000 + (i % 1000) * 0.25 AS price, CAST(1 + i % 9 AS DOUBLE) AS size,
        CASE WHEN i % 2 = 0 THEN 'buy' ELSE 'sell' END AS side,
        'trade-' || lpad(CAST(i AS VARCHAR), 10, '0') || '-' || repeat('x', 40) AS trade_id,
        CAST(i AS BIGINT) AS stream_seq
      FROM range(${BIG_ROWS}) t(i)`);
    mkdirSync(dirname(path), { recursive: true });
    await lake.duck.conn.run(`COPY big TO ${sqlString(path)} (FORMAT parquet, COMPRESSION zstd)`);
    await lake.duck.conn.run('DROP TABLE big');
    await lake.catalog.commit({
      dataset: 'ticks',
      commitId: 'big-ticks',
      changes: [
        {
          partition: { symbol: 'BIG', date: '2025-09-01' },
          add: [
            { path: key, rows: BIG_ROWS, bytes: (await stat(path)).size, sha256: await sha256File(path) },
          ],
        },
      ],
    });
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    service = startService(
      {
        NODE_ENV: 'test',
        NATS_URL: lake.nats.url,
        LAKE_URL: `file://${join(lake.dir.path, 'lake')}`,
        HTTP_PORT: String(port),
        HTTP_HOST: '127.0.0.1',
        API_KEYS_FILE: keys.file,
        EXPORT_WORK_DIR: join(lake.dir.path, 'work'),
        DUCKDB_MEMORY_MB: String(DUCKDB_MB),
        DUCKDB_THREADS: '2',
        LOG_LEVEL: 'info',
      },
      [`--max-old-space-size=${HEAP_MB}`],
    );
    await waitFor('the started log line', () => service!.lines.find((l) => l.msg === 'started'));
  });

  afterAll(async () => {
    if (service && service.proc.exitCode === null) {
      service.proc.kill('SIGKILL');
      await service.exited;
    }
    await lake?.close();
  });

  it('serves /health, /ready, /metrics and /openapi.json without a key, and logs JSON lines', async () => {
    const health = (await (await fetch(`${base}/health`)).json()) as Record<string, unknown>;
    expect(health).toMatchObject({ status: 'ok', parquet_support: true });
    expect(String(health.duckdb_version)).toMatch(/^v\d+\.\d+/);
    expect(health.available_datasets).toEqual(
      expect.arrayContaining(['products', 'ticks', 'candles', 'candles_1m', 'product_prices_daily']),
    );
    expect(Math.abs(Date.parse(String(health.timestamp)) - Date.now())).toBeLessThan(60_000);
    expect((await fetch(`${base}/ready`)).status).toBe(200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain('parquetry_process_resident_memory_bytes');
    expect(metrics).toContain('parquetry_nodejs_eventloop_lag_p99_seconds');
    const openapi = (await (await fetch(`${base}/openapi.json`)).json()) as {
      paths: Record<string, unknown>;
    };
    expect(Object.keys(openapi.paths)).toEqual(
      expect.arrayContaining(['/health', '/v1/exports', '/v1/exports/{id}', '/v1/candles', '/v1/stats']),
    );
    expect((await fetch(`${base}/v1/datasets`)).status).toBe(401);
    // The candle routes are mounted by main too (behind the same keys).
    expect((await fetch(`${base}/v1/candles?symbol=BTCUSDT&timeframe=1m`)).status).toBe(401);
    // A candle read is counted by cache result on /metrics.
    const read = await fetch(`${base}/v1/candles?symbol=BTCUSDT&timeframe=1m`, {
      headers: { authorization: `Bearer ${keys.candles}` },
    });
    expect(read.status).toBe(200);
    const after = await (await fetch(`${base}/metrics`)).text();
    expect(after).toMatch(/^parquetry_cache_requests_total\{[^}]*result="(hit|miss)"[^}]*\} 1$/m);
    const started = service!.lines.find((l) => l.msg === 'started')!;
    expect(started).toMatchObject({ service: 'export-api', level: 30 });
    // The signing secret was made up (NODE_ENV=test): said once, never printed.
    const ephemeral = service!.lines.filter((l) => l.msg === 'signing_secret_ephemeral');
    expect(ephemeral).toHaveLength(1);
    expect(ephemeral[0]).toMatchObject({ level: 40, setting: 'EXPORT_SIGNING_SECRET' });
  });

  it(`exports ${BIG_ROWS.toLocaleString('en')} rows, far more than its memory, with bounded RSS`, async () => {
    const r = await fetch(`${base}/v1/exports`, {
      method: 'POST',
      headers: { authorization: `Bearer ${keys.reader}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        dataset: 'ticks',
        format: 'csv',
        filters: [{ column: 'symbol', op: '=', value: 'BIG' }],
      }),
    });
    let view = (await r.json()) as {
      export_id: string;
      status: string;
      row_count: number;
      file_size: number;
      signed_url: string;
    };
    expect([200, 202]).toContain(r.status);
    view = await waitFor(
      'the export',
      async () => {
        if (view.status !== 'running') return view;
        const g = await fetch(`${base}/v1/exports/${view.export_id}`, {
          headers: { authorization: `Bearer ${keys.reader}` },
        });
        view = (await g.json()) as typeof view;
        return view.status === 'running' ? undefined : view;
      },
      120_000,
    );
    expect(view.status).toBe('succeeded');
    expect(view.row_count).toBe(BIG_ROWS);
    const givenMb = HEAP_MB + DUCKDB_MB;
    expect(view.file_size / 2 ** 20).toBeGreaterThan(2 * givenMb);

    // Streamed download through the service: every row, in order of nothing, summed as we go.
    const d = await fetch(view.signed_url);
    expect(d.status).toBe(200);
    let bytes = 0;
    let lines = 0;
    let seqSum = 0;
    let rest = '';
    const decoder = new TextDecoder();
    for await (const chunk of d.body as unknown as AsyncIterable<Uint8Array>) {
      bytes += chunk.length;
      const text = rest + decoder.decode(chunk, { stream: true });
      const parts = text.split('\n');
      rest = parts.pop()!;
      for (const line of parts) {
        lines++;
        if (lines === 1) {
          expect(line).toBe('symbol,date,ts,price,size,side,trade_id,stream_seq');
          continue;
        }
        seqSum += Number(line.slice(line.lastIndexOf(',') + 1));
      }
    }
    expect(rest).toBe('');
    expect(bytes).toBe(view.file_size);
    expect(lines).toBe(BIG_ROWS + 1);
    expect(seqSum).toBe((BIG_ROWS * (BIG_ROWS - 1)) / 2);

    const peak = peakRssMb(service!.proc.pid!);
    console.log(`export ${(view.file_size / 2 ** 20).toFixed(0)} MB, service peak RSS ${peak.toFixed(0)} MB`);
    expect(peak).toBeLessThan(view.file_size / 2 ** 20 / 1.5);
    expect(peak).toBeLessThan(450);
  });

  it('drains and exits 0 on SIGTERM', async () => {
    service!.proc.kill('SIGTERM');
    expect(await service!.exited).toBe(0);
    expect(service!.lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['draining', 'stopped']));
  });

  it('refuses to start on bad configuration, naming the variable', async () => {
    const bad = startService({
      NATS_URL: lake.nats.url,
      API_KEYS_FILE: '',
      HTTP_PORT: 'eighty',
      LOG_LEVEL: 'info',
    });
    expect(await bad.exited).toBe(1);
    const stderr = String(bad.lines.find((l) => l.stderr)?.stderr ?? '');
    expect(stderr).toMatch(/API_KEYS_FILE/);
    expect(stderr).toMatch(/HTTP_PORT/);
  });
});
