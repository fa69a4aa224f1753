// The system under test of both ingest benchmarks: the real ingest-backup process (its dist build)
// draining a pre-loaded stream, timed from /ready until the catalog holds every row.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuSeconds, peakRssMb, sleep } from '../lib.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Starts ingest-backup on `natsUrl` with a file lake in `lakeDir` and waits until it is ready
 * (consuming): process start-up is not ingest. BENCH_NODE_ARGS and BENCH_LOG_LEVEL apply.
 */
export async function startIngestBackup({ natsUrl, lakeDir, env = {} }) {
  const port = 19000 + Math.floor(Math.random() * 900);
  const child = spawn(
    process.execPath,
    [
      ...(process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ') : []),
      join(root, 'services/ingest-backup/dist/main.js'),
    ],
    {
      env: {
        ...process.env,
        NATS_URL: natsUrl,
        LAKE_URL: `file://${lakeDir}`,
        HTTP_PORT: String(port),
        LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn',
        // The generated data is dated 2025-09-03: retention must not drop it mid-run.
        PARQUET_MAX_AGE_DAYS: '36500',
        ...env,
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  const started = performance.now();
  while (
    !(await fetch(`http://127.0.0.1:${port}/ready`)
      .then((r) => r.ok)
      .catch(() => false))
  ) {
    if (child.exitCode !== null) throw new Error(`ingest-backup exited with ${child.exitCode}`);
    await sleep(20);
  }
  return { child, startupSeconds: (performance.now() - started) / 1000 };
}

/**
 * Polls the catalog until `dataset` holds `total` rows; the seconds it took, the service's peak
 * RSS and CPU seconds. Then stops the service (SIGTERM) and waits for its exit.
 */
export async function drain({ child, catalog, dataset, total, everyMs = 200, timeoutMs = 900_000 }) {
  const started = performance.now();
  let committed = 0;
  let peak = 0;
  while (committed < total) {
    await sleep(everyMs);
    peak = Math.max(peak, peakRssMb(child.pid) ?? 0);
    committed = (await catalog.liveFiles(dataset)).reduce((n, f) => n + f.rows, 0);
    if (child.exitCode !== null) throw new Error(`ingest-backup exited with ${child.exitCode}`);
    if (performance.now() - started > timeoutMs) throw new Error('timed out');
  }
  const seconds = (performance.now() - started) / 1000;
  peak = Math.max(peak, peakRssMb(child.pid) ?? 0);
  const cpu = cpuSeconds(child.pid);
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
  return { seconds, peakRssMb: peak, cpuSeconds: cpu, rows: committed };
}
