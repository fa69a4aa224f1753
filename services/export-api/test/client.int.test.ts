import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  createClient,
  type DatasetInfo,
  type ErrorBody,
  type ExportEstimate,
  ExportFailedError,
  type ExportRequest,
  type ExportResult,
  ForbiddenError,
  type Health,
  InvalidRequestError,
  NotFoundError,
  RequestTimeoutError,
  UnauthorizedError,
} from '@parquetry/client';
import { parseCsv, readParquetIndependent, requireServers } from '@parquetry/testkit';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import type { z } from 'zod';
import type {
  datasetsResponseSchema,
  errorResponseSchema,
  exportEstimateSchema,
  exportRequestSchema,
  exportSchema,
  healthResponseSchema,
} from '../src/index.js';
import {
  freePort,
  openTestLake,
  startApi,
  type TestKeys,
  type TestLake,
  type TickRow,
  testConfig,
  writeKeys,
  writeTicks,
} from './lake-fixture.js';
import { expectRows, readBoth } from './read-back.js';

// @parquetry/client end to end against the running service on a real lake. Its hand-written
// types must be the service's zod types: checked here at compile time (typecheck) as well.
const skip = await requireServers({ nats: true });

describe('client types mirror the service schemas', () => {
  it('are the same types', () => {
    expectTypeOf<ExportResult>().toEqualTypeOf<z.output<typeof exportSchema>>();
    expectTypeOf<ExportEstimate>().toEqualTypeOf<z.output<typeof exportEstimateSchema>>();
    expectTypeOf<Health>().toEqualTypeOf<z.output<typeof healthResponseSchema>>();
    expectTypeOf<{ datasets: DatasetInfo[] }>().toEqualTypeOf<z.output<typeof datasetsResponseSchema>>();
    expectTypeOf<ErrorBody>().toEqualTypeOf<z.output<typeof errorResponseSchema>>();
    // Everything the client can send is accepted by the service's request schema.
    expectTypeOf<ExportRequest>().toExtend<z.input<typeof exportRequestSchema>>();
  });
});

describe.skipIf(skip)('@parquetry/client against a running export-api', () => {
  let lake: TestLake;
  let keys: TestKeys;
  let ticks: TickRow[];
  let server: Awaited<ReturnType<typeof startApi>>;
  let background: Awaited<ReturnType<typeof startApi>>;

  beforeAll(async () => {
    lake = await openTestLake('fs');
    ticks = await writeTicks(lake, 1500);
    keys = writeKeys(lake.dir.path);
    server = await startApi(testConfig(lake, keys, await freePort()), lake);
    background = await startApi(
      testConfig(lake, keys, await freePort(), { EXPORT_SYNC_WAIT_MS: '0', EXPORT_MAX_FILES: '5' }),
      lake,
    );
  });
  afterAll(async () => {
    await background?.close();
    await server?.close();
    await lake?.close();
  });

  it('checks health, lists datasets, estimates, exports and downloads to disk', async () => {
    const client = createClient({ baseUrl: server.base, apiKey: keys.reader, timeoutMs: 10_000 });
    const health = await client.checkHealth();
    expect(health.status).toBe('ok');
    const datasets = await client.listDatasets();
    expect(datasets.map((d) => d.name)).toEqual(expect.arrayContaining(['ticks', 'products']));
    expect(datasets.find((d) => d.name === 'ticks')!.schema.ts).toBe('TIMESTAMPTZ');

    const request: ExportRequest = { dataset: 'ticks', format: 'parquet', compression: 'zstd' };
    const estimate = await client.estimateExportSize(request);
    expect(estimate.source_rows).toBe(ticks.length);
    const done = await client.requestExport(request);
    expect(done.status).toBe('succeeded');
    const dest = join(lake.dir.path, 'client', 'ticks.parquet');
    const file = await client.downloadFile(done, dest);
    expect(file.bytes).toBe(done.file_size);
    expect(statSync(dest).size).toBe(done.file_size);
    expect(await readParquetIndependent(dest)).toHaveLength(ticks.length);
    const bytes = readFileSync(dest);
    expectRows(
      await readBoth(lake.duck.conn, lake.dir.path, 'client-1', bytes, 'parquet', 'zstd'),
      ticks,
      done.schema!,
    );
  });

  it('waits for background exports and downloads every file of a partitioned one', async () => {
    const client = createClient({ baseUrl: background.base, apiKey: keys.reader });
    const first = await client.requestExport({ dataset: 'ticks', format: 'csv', partition_by: ['symbol'] });
    expect(first.status).toBe('running');
    const done = await client.waitForExport(first.export_id, { intervalMs: 50, timeoutMs: 30_000 });
    expect(done.files.map((f) => f.file_path.split('/')[2]).sort()).toEqual(['symbol=ES', 'symbol=NQ']);
    const files = await client.downloadExport(done, join(lake.dir.path, 'client-parts'));
    expect(files.map((f) => f.path.split('/').slice(-2)[0]).sort()).toEqual(['symbol=ES', 'symbol=NQ']);
    // Trade ids hold line breaks: count CSV records, not lines.
    const lines = files.map((f) => parseCsv(readFileSync(f.path, 'utf8'), ',').length - 1);
    expect(lines.reduce((a, b) => a + b, 0)).toBe(ticks.length);
    // A single-file download needs the single signed URL.
    await expect(client.downloadFile(done, join(lake.dir.path, 'x'))).rejects.toMatchObject({
      code: 'no_signed_url',
    });
  });

  it('runs bulk exports concurrently, each with its own outcome', async () => {
    const client = createClient({ baseUrl: background.base, apiKey: keys.reader });
    const results = await client.bulkExport(
      [
        { dataset: 'ticks', format: 'json', filters: [{ column: 'symbol', op: '=', value: 'ES' }] },
        { dataset: 'nope', format: 'csv' },
        { dataset: 'ticks', format: 'csv', compression: 'gzip', limit: 10 },
      ],
      { concurrency: 2, wait: { intervalMs: 50 } },
    );
    expect(results[0]!.result?.row_count).toBe(ticks.filter((t) => t.symbol === 'ES').length);
    expect(results[1]!.error).toBeInstanceOf(InvalidRequestError);
    expect((results[1]!.error as InvalidRequestError).details).toMatchObject({
      valid: expect.arrayContaining(['ticks']),
    });
    expect(results[2]!.result?.row_count).toBe(10);
  });

  it('turns error answers into typed errors carrying {code, message, details}', async () => {
    const reader = createClient({ baseUrl: server.base, apiKey: keys.reader });
    const err = await reader
      .requestExport({ dataset: 'ticks', format: 'csv', columns: ['nope'] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidRequestError);
    expect(err).toMatchObject({ status: 400, code: expect.any(String), message: expect.any(String) });

    const bad = createClient({ baseUrl: server.base, apiKey: 'pq_wrong' });
    await expect(bad.listDatasets()).rejects.toBeInstanceOf(UnauthorizedError);
    await expect(bad.listDatasets()).rejects.toMatchObject({ status: 401, code: 'unauthorized' });

    const ticksOnly = createClient({ baseUrl: server.base, apiKey: keys.ticksOnly });
    await expect(ticksOnly.requestExport({ dataset: 'products', format: 'csv' })).rejects.toBeInstanceOf(
      ForbiddenError,
    );
    const mine = await reader.requestExport({ dataset: 'ticks', format: 'csv', limit: 1 });
    const other = createClient({ baseUrl: server.base, apiKey: keys.other });
    await expect(other.getExport(mine.export_id)).rejects.toBeInstanceOf(NotFoundError);

    // An expired link: a typed 403 from the download, and nothing left on disk.
    const short = await reader.requestExport({ dataset: 'ticks', format: 'csv', limit: 1, expires_in: 1 });
    await new Promise((r) => setTimeout(r, 2100));
    const dest = join(lake.dir.path, 'expired.csv');
    await expect(reader.downloadFile(short, dest)).rejects.toBeInstanceOf(ForbiddenError);
    expect(() => statSync(dest)).toThrow();
    expect(() => statSync(`${dest}.part`)).toThrow();

    // A failed background export is an ExportFailedError with the server's code.
    const bg = createClient({ baseUrl: background.base, apiKey: keys.reader });
    const many = await bg.requestExport({ dataset: 'ticks', format: 'csv', partition_by: ['trade_id'] });
    const failed = await bg.waitForExport(many, { intervalMs: 50 }).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(ExportFailedError);
    expect(failed).toMatchObject({ code: 'too_many_files' });

    // Nothing listens: a network error; a server that does not answer in time: a timeout.
    const closed = createClient({ baseUrl: `http://127.0.0.1:${await freePort()}`, apiKey: keys.reader });
    await expect(closed.checkHealth()).rejects.toMatchObject({ code: 'network', retryable: true });
    const slow = createClient({
      baseUrl: server.base,
      apiKey: keys.reader,
      timeoutMs: 50,
      fetch: (input, init) =>
        new Promise((resolve, reject) => {
          init?.signal?.addEventListener('abort', () => reject(init.signal!.reason));
          setTimeout(() => resolve(fetch(input, init)), 1000);
        }),
    });
    await expect(slow.checkHealth()).rejects.toBeInstanceOf(RequestTimeoutError);
  });
});
