import { Writable } from 'node:stream';
import { FsObjectStore } from '@parquetry/lake';
import { tempDir } from '@parquetry/testkit';
import { pino } from 'pino';
import { type AppConfig, buildApp, createKey, KeyStore, staticDatasetCatalog } from '../src/index.js';
import { RecordingEngine } from './fixtures/recording-engine.js';

export const SECRET = 'test-secret-test-secret-test-secret!';
export const BASE_URL = 'http://export.test';

/**
 * The app as main() builds it — real keys, a real filesystem lake in a temp dir — with a
 * settable clock and captured log lines. `close()` stops the app and removes the lake.
 */
export async function buildTestApp(overrides: Partial<AppConfig> & { withEngine?: boolean } = {}) {
  const keys = {
    reader: createKey({ name: 'reader', datasets: ['products', 'ticks'] }),
    other: createKey({ name: 'other', datasets: ['products', 'ticks'] }),
    admin: createKey({ name: 'admin', datasets: ['*'], admin: true }),
    revoked: createKey({ name: 'revoked', datasets: ['*'] }),
    scoped: createKey({
      name: 'scoped',
      datasets: ['products'],
      rowScopes: { products: [{ column: 'retailer', op: 'in', value: ['falabella', 'ripley'] }] },
    }),
  };
  const store = KeyStore.fromRecords(
    Object.values(keys).map((k) => (k.record.name === 'revoked' ? { ...k.record, revoked: true } : k.record)),
  );
  const logs: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk, _enc, done) {
        logs.push(JSON.parse(String(chunk)));
        done();
      },
    }),
  );
  const lakeDir = tempDir('pq-export-api-');
  const objects = new FsObjectStore(lakeDir.path);
  const engine = new RecordingEngine(objects);
  const clock = { now: Date.UTC(2025, 8, 3, 12) };
  const { withEngine = true, ...config } = overrides;
  const app = await buildApp({
    config: {
      BODY_LIMIT_BYTES: 16 * 1024,
      RATE_LIMIT_PER_MIN: 10_000,
      DOWNLOAD_URL_TTL_S: 3600,
      DOWNLOAD_URL_MAX_TTL_S: 7200,
      EXPORT_SIGNING_SECRET: SECRET,
      PUBLIC_BASE_URL: BASE_URL,
      EXPORT_SYNC_WAIT_MS: 2000,
      ...config,
    },
    logger,
    keys: store,
    datasets: staticDatasetCatalog(),
    store: objects,
    ...(withEngine ? { engine } : {}),
    clock: () => clock.now,
  });
  const bearer = (name: keyof typeof keys) => ({ authorization: `Bearer ${keys[name].key}` });
  const close = async () => {
    await app.close();
    await objects.close();
    lakeDir.remove();
  };
  return { app, close, keys, bearer, engine, objects, logs, clock };
}

/** The path part of a signed URL, for app.inject. */
export function pathOf(url: string): string {
  return url.slice(BASE_URL.length);
}
