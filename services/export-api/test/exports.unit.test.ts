import { InvalidInputError } from '@parquetry/service';
import { afterEach, describe, expect, it } from 'vitest';
import { BASE_URL, buildTestApp, pathOf } from './helper.js';

type TestApp = Awaited<ReturnType<typeof buildTestApp>>;
const apps: TestApp[] = [];
async function setup(...args: Parameters<typeof buildTestApp>): Promise<TestApp> {
  const t = await buildTestApp(...args);
  apps.push(t);
  return t;
}
afterEach(async () => {
  for (const t of apps.splice(0)) await t.close();
});

const body = {
  dataset: 'ticks',
  format: 'parquet',
  compression: 'zstd',
  columns: ['ts', 'price', 'symbol'],
  filters: [{ column: 'symbol', op: '=', value: "ES'; --" }],
  date_range: { start: '2025-09-01', end: '2025-09-02' },
  limit: 100,
};

describe('POST /v1/exports', () => {
  it('hands the engine a compiled, scoped job and answers with a working signed URL', async () => {
    const { app, bearer, engine, objects, logs, clock } = await setup();
    const r = await app.inject({
      method: 'POST',
      url: '/v1/exports',
      headers: bearer('reader'),
      payload: body,
    });
    expect(r.statusCode).toBe(200);
    const view = r.json();
    expect(view).toMatchObject({
      status: 'succeeded',
      dataset: 'ticks',
      format: 'parquet',
      compression: 'zstd',
      row_count: 7,
      schema: { ts: 'TIMESTAMPTZ', price: 'DOUBLE', symbol: 'VARCHAR' },
      file_path: `exports/${view.export_id}/data.parquet`,
      expires_at: new Date(clock.now + 3600_000).toISOString(),
    });
    expect(view.owner).toBeUndefined();
    expect(view.signed_url.startsWith(`${BASE_URL}/v1/downloads/`)).toBe(true);

    const job = engine.jobs[0]!;
    expect(job.output_prefix).toBe(`exports/${view.export_id}/`);
    expect(job.query.selectedColumns).toEqual(['ts', 'price', 'symbol']);
    expect(job.query.params).toContain("ES'; --");
    expect(job.query.sql).not.toContain("'");

    const download = await app.inject({ url: pathOf(view.signed_url) });
    expect(download.statusCode).toBe(200);
    expect(download.headers['content-type']).toBe('application/vnd.apache.parquet');
    expect(download.headers['content-disposition']).toBe('attachment; filename="data.parquet"');
    expect(download.rawPayload.equals(await objects.getBytes(view.file_path))).toBe(true);
    expect(JSON.parse(download.body).params).toContain("ES'; --");

    expect(logs).toContainEqual(
      expect.objectContaining({
        audit: true,
        event: 'export',
        key_name: 'reader',
        dataset: 'ticks',
        export_id: view.export_id,
        filters: body.filters,
        rows: 7,
        bytes: view.file_size,
        status: 'succeeded',
      }),
    );
    // The key itself never reaches the log.
    expect(JSON.stringify(logs)).not.toContain(bearer('reader').authorization.slice(7));
  });

  it('defaults compression per format and refuses parquet-only codecs for text formats', async () => {
    const { app, bearer } = await setup();
    const csv = await app.inject({
      method: 'POST',
      url: '/v1/exports',
      headers: bearer('reader'),
      payload: { dataset: 'ticks', format: 'csv' },
    });
    expect(csv.json().compression).toBe('none');
    const bad = await app.inject({
      method: 'POST',
      url: '/v1/exports',
      headers: bearer('reader'),
      payload: { dataset: 'ticks', format: 'json', compression: 'zstd' },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.details.issues[0].path).toBe('compression');
  });

  it('takes expires_in up to the configured maximum', async () => {
    const { app, bearer, clock } = await setup();
    const ok = await app.inject({
      method: 'POST',
      url: '/v1/exports',
      headers: bearer('reader'),
      payload: { dataset: 'ticks', format: 'csv', expires_in: 600 },
    });
    expect(ok.json().expires_at).toBe(new Date(clock.now + 600_000).toISOString());
    clock.now += 601_000;
    expect((await app.inject({ url: pathOf(ok.json().signed_url) })).statusCode).toBe(403);
    const tooLong = await app.inject({
      method: 'POST',
      url: '/v1/exports',
      headers: bearer('reader'),
      payload: { dataset: 'ticks', format: 'csv', expires_in: 7201 },
    });
    expect(tooLong.statusCode).toBe(400);
  });

  it('answers 202 for a slow export, which GET /v1/exports/:id shows finished later with fresh links', async () => {
    const { app, bearer, engine } = await setup({ EXPORT_SYNC_WAIT_MS: 10 });
    engine.delayMs = 100;
    const r = await app.inject({
      method: 'POST',
      url: '/v1/exports',
      headers: bearer('reader'),
      payload: body,
    });
    expect(r.statusCode).toBe(202);
    expect(r.json()).toMatchObject({ status: 'running', signed_url: null, file_path: null, files: [] });
    const id = r.json().export_id;
    await new Promise((resolve) => setTimeout(resolve, 200));
    const later = await app.inject({ url: `/v1/exports/${id}`, headers: bearer('reader') });
    expect(later.statusCode).toBe(200);
    expect(later.json()).toMatchObject({ status: 'succeeded', row_count: 7 });
    expect((await app.inject({ url: pathOf(later.json().signed_url) })).statusCode).toBe(200);
  });

  it('maps engine failures: a 4xx stays a 4xx, anything else is a 500 without details, both recorded', async () => {
    const { app, bearer, engine, logs } = await setup();
    engine.failWith = new InvalidInputError('too many partitions (max 1000)', {
      code: 'too_many_partitions',
    });
    const client = await app.inject({
      method: 'POST',
      url: '/v1/exports',
      headers: bearer('reader'),
      payload: body,
    });
    expect(client.statusCode).toBe(400);
    expect(client.json().error.code).toBe('too_many_partitions');

    engine.failWith = new Error('disk /var/lib/secret-path full');
    const server = await app.inject({
      method: 'POST',
      url: '/v1/exports',
      headers: bearer('reader'),
      payload: body,
    });
    expect(server.statusCode).toBe(500);
    expect(server.json()).toEqual({ error: { code: 'internal', message: 'internal error' } });
    expect(server.body).not.toContain('secret-path');

    const failed = logs.filter((l) => l.event === 'export' && l.status === 'failed');
    expect(failed.map((l) => l.error_code)).toEqual(['too_many_partitions', 'internal']);
    const id = engine.jobs[1]!.export_id;
    const record = await app.inject({ url: `/v1/exports/${id}`, headers: bearer('reader') });
    expect(record.json()).toMatchObject({ status: 'failed', error: { code: 'internal' }, signed_url: null });
  });

  it('refuses an engine result that points outside the export', async () => {
    const { app, bearer, engine } = await setup();
    engine.run = async () => ({ files: [{ key: 'catalog/state.json', size: 10 }], row_count: 1 });
    const r = await app.inject({
      method: 'POST',
      url: '/v1/exports',
      headers: bearer('reader'),
      payload: body,
    });
    expect(r.statusCode).toBe(500);
  });

  it('answers 503 while no engine is wired, after every check that can refuse', async () => {
    const { app, bearer } = await setup({ withEngine: false });
    const r = await app.inject({
      method: 'POST',
      url: '/v1/exports',
      headers: bearer('reader'),
      payload: body,
    });
    expect(r.statusCode).toBe(503);
    expect(r.json().error.code).toBe('unavailable');
    const denied = await app.inject({
      method: 'POST',
      url: '/v1/exports',
      headers: bearer('reader'),
      payload: { ...body, dataset: 'candles' },
    });
    expect(denied.statusCode).toBe(403);
    const health = await app.inject({ url: '/health' });
    expect(health.json()).toMatchObject({ status: 'degraded', parquet_support: false, duckdb_version: null });
  });
});

describe('GET /v1/datasets, /health, /openapi.json', () => {
  it('lists schemas of readable datasets', async () => {
    const { app, bearer } = await setup();
    const r = await app.inject({ url: '/v1/datasets', headers: bearer('admin') });
    const ticks = r.json().datasets.find((d: { name: string }) => d.name === 'ticks');
    expect(ticks).toMatchObject({
      partition_columns: ['symbol', 'date'],
      schema: { ts: 'TIMESTAMPTZ', price: 'DOUBLE' },
      time_column: 'ts',
    });
    expect(ticks.columns).toContain('trade_id');
  });

  it('reports health without a key', async () => {
    const { app } = await setup();
    const r = await app.inject({ url: '/health' });
    expect(r.json()).toMatchObject({
      status: 'ok',
      parquet_support: true,
      duckdb_version: 'fixture',
      available_datasets: ['products', 'ticks', 'candles'],
      timestamp: '2025-09-03T12:00:00.000Z',
    });
  });

  it('serves an OpenAPI 3.1 document built from the request and response schemas', async () => {
    const { app } = await setup();
    const doc = (await app.inject({ url: '/openapi.json' })).json();
    expect(doc.openapi).toBe('3.1.0');
    const post = doc.paths['/v1/exports'].post;
    const request = post.requestBody.content['application/json'].schema;
    expect(request.required).toEqual(expect.arrayContaining(['dataset', 'format']));
    expect(request.additionalProperties).toBe(false);
    expect(request.properties.format.enum).toEqual(['parquet', 'csv', 'json']);
    const filterOps = JSON.stringify(request.properties.filters);
    for (const op of ['between', 'like', 'is_null', 'in']) expect(filterOps).toContain(`"${op}"`);
    expect(post.responses['200'].content['application/json'].schema.properties.signed_url).toBeDefined();
    for (const status of ['400', '401', '403', '413', '429']) {
      expect(post.responses[status].content['application/json'].schema.$ref).toBe(
        '#/components/schemas/Error',
      );
    }
    expect(doc.paths['/health'].get.security).toEqual([]);
    expect(doc.paths['/v1/downloads/{token}'].get.security).toEqual([]);
  });
});
