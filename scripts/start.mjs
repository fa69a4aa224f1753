// `pnpm start`: the whole system on embedded defaults, for a first look on a fresh clone.
// Installs and builds, finds or starts NATS, then runs every built service, a demo feed (the
// real product files and trades of ../shared/data) and prints the URLs and a demo API key.
// Ctrl-C stops everything: the feed, then the services (each drains), then a NATS it started.
//
//   pnpm start [-- --no-build] [-- --no-demo]
//   NATS_URL, LAKE_URL, DATABASE_URL, LOG_LEVEL as for the services (docs/DESIGN.md); LOG_FORMAT=json
//   shows the services' JSON lines unshortened; DEMO_* tune the feed (scripts/demo/feed.mjs).
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { signingSecret, writeDemoKey } from './lib/demo-key.mjs';
import { planNats, waitNats } from './lib/nats.mjs';
import { pickPort, waitHttp } from './lib/net.mjs';
import { probePostgres } from './lib/postgres.mjs';
import { SERVICES, serviceState } from './lib/services.mjs';
import { Supervised } from './lib/supervisor.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));
const dataDir = join(root, 'data');
const color = process.stdout.isTTY === true;
const format = { json: process.env.LOG_FORMAT === 'json', color, width: 18 };
const say = (msg) =>
  process.stdout.write(
    `${color ? '\u001b[1m' : ''}${'start'.padEnd(18)}| ${msg}${color ? '\u001b[0m' : ''}\n`,
  );
const rel = (p) => `./${relative(root, p)}`;

const children = [];
let nats;
let feed;
let stopping = false;

async function stopAll(code) {
  if (stopping) return;
  stopping = true;
  say('stopping: demo feed, then the services (each drains), then NATS if start started it');
  if (feed) await feed.stop('SIGINT', 15_000);
  await Promise.all(children.map((c) => c.stop('SIGINT', 50_000)));
  if (nats) await nats.stop('SIGINT', 15_000);
  say('stopped');
  process.exit(code);
}

process.on('SIGINT', () => {
  if (stopping) {
    say('second Ctrl-C: killing everything now');
    for (const c of [feed, ...children, nats]) if (c?.running) c.proc.kill('SIGKILL');
    process.exit(130);
  }
  void stopAll(0);
});
process.on('SIGTERM', () => void stopAll(0));

async function main() {
  if (!args.has('--no-build')) {
    const { ensureBuilt } = await import('./pnpm.mjs');
    ensureBuilt();
  }
  mkdirSync(dataDir, { recursive: true });

  // Every child runs under the parent watch (scripts/lib/parent-watch.mjs).
  const watch = pathToFileURL(join(root, 'scripts', 'lib', 'parent-watch.mjs')).href;

  // The bus.
  const natsUrl = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
  const plan = await planNats(natsUrl, join(dataDir, 'nats'));
  if (plan.mode === 'error') {
    say(plan.message);
    process.exit(1);
  }
  let natsNote = `${natsUrl} (a server already running there)`;
  if (plan.mode === 'local') {
    say(
      `nothing answers at ${natsUrl}: starting ${plan.bin} ${plan.version} with JetStream, store in ${rel(join(dataDir, 'nats'))}`,
    );
    const guard = join(root, 'scripts', 'lib', 'guard.mjs');
    nats = new Supervised({
      name: 'nats-server',
      command: process.execPath,
      args: ['--import', watch, guard, plan.bin, ...plan.args],
      say,
      format,
      maxRestarts: 2,
    }).start();
    if (!(await waitNats(plan.host, plan.port, { gaveUp: () => !nats.running && nats.exits.length > 0 }))) {
      say('nats-server did not start');
      await stopAll(1);
    }
    natsNote = `${natsUrl} (local nats-server started by start, store ${rel(join(dataDir, 'nats'))})`;
  }

  // The lake, keys, PostgreSQL.
  const lakeUrl = process.env.LAKE_URL ?? `file://${join(dataDir, 'lake')}`;
  if (lakeUrl.startsWith('file://')) mkdirSync(lakeUrl.slice('file://'.length), { recursive: true });
  const databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/parquetry';
  const keysFile = process.env.API_KEYS_FILE ?? join(dataDir, 'api-keys.json');

  const base = {
    ...process.env,
    NATS_URL: natsUrl,
    LAKE_URL: lakeUrl,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
  };
  const started = [];
  const skipped = [];
  let demoKey;
  for (const svc of SERVICES) {
    const { state, main } = serviceState(root, svc.name);
    if (state !== 'ok') {
      skipped.push(
        `${svc.name}: ${state === 'stub' ? 'its main is still a stub (not written yet)' : 'not built (no dist/main.js)'}`,
      );
      continue;
    }
    const env = { ...base };
    if (svc.needs === 'postgres') {
      const pg = await probePostgres(root, databaseUrl);
      if (!pg.ok) {
        skipped.push(`${svc.name}: PostgreSQL does not answer at DATABASE_URL (${pg.reason.split('\n')[0]})`);
        continue;
      }
      if (pg.created) say(`created the database of DATABASE_URL`);
      env.DATABASE_URL = databaseUrl;
    }
    if (svc.name === 'export-api') {
      try {
        demoKey = await writeDemoKey(root, keysFile);
      } catch (err) {
        skipped.push(`${svc.name}: cannot write the demo API key to ${keysFile} (${err.message})`);
        continue;
      }
      env.API_KEYS_FILE = keysFile;
      env.EXPORT_SIGNING_SECRET = process.env.EXPORT_SIGNING_SECRET ?? signingSecret(dataDir);
    }
    const port = await pickPort(svc.port);
    if (port !== svc.port) say(`port ${svc.port} is taken: ${svc.name} listens on ${port} instead`);
    env.HTTP_PORT = String(port);
    if (svc.name === 'export-api')
      env.PUBLIC_BASE_URL = process.env.PUBLIC_BASE_URL ?? `http://localhost:${port}`;
    const child = new Supervised({
      name: svc.name,
      command: process.execPath,
      args: ['--import', watch, main],
      env,
      cwd: root,
      say,
      format,
    }).start();
    children.push(child);
    started.push({ ...svc, port, child });
  }
  for (const s of skipped) say(`skipped ${s}`);
  if (started.length === 0) {
    say('no service is runnable yet');
    await stopAll(1);
  }

  // Health of every service, in parallel.
  const health = await Promise.all(
    started.map(async (s) => ({
      ...s,
      healthy: await waitHttp(`http://127.0.0.1:${s.port}/health`, {
        timeoutMs: 90_000,
        gaveUp: () => stopping || s.child.failed,
      }),
    })),
  );
  if (stopping) return;

  // The demo feed.
  const { sharedDataDir } = await import('./demo/products.mjs');
  let feedNote;
  if (args.has('--no-demo')) feedNote = 'off (--no-demo)';
  else if (!existsSync(sharedDataDir())) {
    feedNote = `off: no shared data at ${sharedDataDir()} (set PARQUETRY_SHARED_DATA)`;
  } else {
    feed = new Supervised({
      name: 'demo-feed',
      command: process.execPath,
      args: ['--import', watch, join(root, 'scripts', 'demo', 'feed.mjs')],
      env: base,
      cwd: root,
      say,
      format,
    }).start();
    feedNote = `product batches from ${sharedDataDir()}/products, BTCUSDT trades from ${sharedDataDir()}/market`;
  }

  const api = health.find((s) => s.name === 'export-api');
  const lines = [
    '',
    'Parquetry is running.',
    `  bus    ${natsNote}`,
    `  lake   ${lakeUrl}`,
    `  demo   ${feedNote}`,
    '',
  ];
  for (const s of health) {
    const url = `http://localhost:${s.port}`;
    const status = s.healthy ? 'up' : 'NOT answering /health';
    lines.push(
      `  ${s.name.padEnd(18)} ${url}  (/health /ready /metrics${s.name === 'export-api' ? ' /openapi.json' : ''})  ${status}`,
    );
  }
  for (const s of skipped) lines.push(`  skipped ${s}`);
  if (api && demoKey) {
    writeFileSync(join(dataDir, 'demo-api-key'), `${demoKey}\n`, { mode: 0o600 });
    const u = `http://localhost:${api.port}`;
    lines.push(
      '',
      `  demo API key (admin, every dataset; also in ${rel(join(dataDir, 'demo-api-key'))}):`,
      `    ${demoKey}`,
      '',
      '  try:',
      `    curl -H 'Authorization: Bearer ${demoKey}' '${u}/v1/candles?symbol=BTCUSDT&timeframe=1m&limit=5'`,
      `    curl -H 'Authorization: Bearer ${demoKey}' -H 'content-type: application/json' \\`,
      `      -d '{"dataset":"products","format":"csv","limit":100}' ${u}/v1/exports`,
    );
  }
  lines.push(
    `    LAKE_URL=${lakeUrl} npx -y pnpm@10 parquetry lake stats`,
    '',
    '  Ctrl-C stops everything.',
    '',
  );
  for (const l of lines) say(l);
}

main().catch(async (err) => {
  say(`failed: ${err?.stack ?? err}`);
  await stopAll(1);
});
