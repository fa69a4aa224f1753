import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { buildTestApp, pathOf } from './helper.js';

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

const exportBody = { dataset: 'ticks', format: 'parquet', columns: ['ts', 'price'] };

describe('authentication', () => {
  it('answers no key, a wrong key, a malformed header and a revoked key with one identical 401', async () => {
    const { app, keys } = await setup();
    const headers = [
      {},
      { authorization: 'Bearer pq_not-a-key' },
      { authorization: `Basic ${keys.reader.key}` },
      { authorization: `Bearer ${keys.revoked.key}` },
    ];
    for (const [method, url] of [
      ['GET', '/v1/datasets'],
      ['POST', '/v1/exports'],
      ['GET', '/v1/exports/0f8fad5b-d9cb-469f-a165-70867728950e'],
      ['GET', '/v1/keys'],
      ['GET', '/v1/no-such-route'],
    ] as const) {
      const responses = await Promise.all(
        headers.map((h) =>
          app.inject({ method, url, headers: h, ...(method === 'POST' ? { payload: exportBody } : {}) }),
        ),
      );
      for (const r of responses) {
        expect(r.statusCode).toBe(401);
        expect(r.headers['www-authenticate']).toBe('Bearer');
      }
      expect(new Set(responses.map((r) => r.body)).size).toBe(1);
      expect(responses[0]!.json()).toEqual({
        error: { code: 'unauthorized', message: 'missing or invalid API key' },
      });
    }
  });

  it('needs no key for /health and /openapi.json; unknown routes are JSON 404s once authenticated', async () => {
    const { app, bearer } = await setup();
    expect((await app.inject({ url: '/health' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/openapi.json' })).statusCode).toBe(200);
    const missing = await app.inject({ url: '/v1/no-such-route', headers: bearer('reader') });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('not_found');
    expect((await app.inject({ url: '/nope' })).statusCode).toBe(404);
  });
});

describe('authorisation', () => {
  it('refuses a dataset outside the key scope with 403 and audits the refusal', async () => {
    const { app, bearer, engine, logs } = await setup();
    const r = await app.inject({
      method: 'POST',
      url: '/v1/exports',
      headers: bearer('reader'),
      payload: { dataset: 'candles', format: 'csv' },
    });
    expect(r.statusCode).toBe(403);
    expect(r.json().error.code).toBe('forbidden');
    expect(engine.jobs).toHaveLength(0);
    expect(logs).toContainEqual(
      expect.objectContaining({ audit: true, event: 'denied', key_name: 'reader', dataset: 'candles' }),
    );
    // The listing shows only what the key may read.
    const list = await app.inject({ url: '/v1/datasets', headers: bearer('reader') });
    expect(list.json().datasets.map((d: { name: string }) => d.name)).toEqual(['products', 'ticks']);
  });

  it('lists the valid datasets (for this key) when the dataset is unknown', async () => {
    const { app, bearer } = await setup();
    const r = await app.inject({
      method: 'POST',
      url: '/v1/exports',
      headers: bearer('reader'),
      payload: { dataset: 'trades', format: 'csv' },
    });
    expect(r.statusCode).toBe(400);
    expect(r.json().error).toMatchObject({
      code: 'unknown_dataset',
      details: { valid: ['products', 'ticks'] },
    });
    expect(r.json().error.message).toMatch(/valid: products, ticks/);
  });

  it('keeps admin routes for admin keys, and never shows key hashes', async () => {
    const { app, bearer, keys } = await setup();
    const denied = await app.inject({ url: '/v1/keys', headers: bearer('reader') });
    expect(denied.statusCode).toBe(403);
    const ok = await app.inject({ url: '/v1/keys', headers: bearer('admin') });
    expect(ok.statusCode).toBe(200);
    expect(ok.json().keys.map((k: { name: string }) => k.name)).toContain('scoped');
    expect(ok.body).not.toContain(keys.reader.record.sha256);
  });

  it("answers another key's export id exactly like an unknown id (404)", async () => {
    const { app, bearer } = await setup();
    const created = await app.inject({
      method: 'POST',
      url: '/v1/exports',
      headers: bearer('reader'),
      payload: exportBody,
    });
    expect(created.statusCode).toBe(200);
    const id = created.json().export_id;
    expect((await app.inject({ url: `/v1/exports/${id}`, headers: bearer('reader') })).statusCode).toBe(200);
    const theirs = await app.inject({ url: `/v1/exports/${id}`, headers: bearer('other') });
    const admins = await app.inject({ url: `/v1/exports/${id}`, headers: bearer('admin') });
    const unknown = await app.inject({
      url: '/v1/exports/0f8fad5b-d9cb-469f-a165-70867728950e',
      headers: bearer('other'),
    });
    for (const r of [theirs, admins, unknown]) expect(r.statusCode).toBe(404);
    expect(theirs.body).toBe(unknown.body);
  });

  it('applies the key row scope to every export, whatever the filters ask', async () => {
    const { app, bearer, engine } = await setup();
    const r = await app.inject({
      method: 'POST',
      url: '/v1/exports',
      headers: bearer('scoped'),
      payload: {
        dataset: 'products',
        format: 'json',
        filters: [{ column: 'retailer', op: '=', value: 'paris' }],
      },
    });
    expect(r.statusCode).toBe(200);
    const { query } = engine.jobs[0]!;
    expect(query.sql).toContain(
      'WHERE ("retailer" IN (CAST($1 AS VARCHAR), CAST($2 AS VARCHAR))) AND ("retailer" = ',
    );
    expect(query.params.slice(0, 3)).toEqual(['falabella', 'ripley', 'paris']);
  });
});

describe('limits', () => {
  it('rate-limits per key after authentication, with retry-after', async () => {
    const { app, bearer } = await setup({ RATE_LIMIT_PER_MIN: 3 });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++)
      statuses.push((await app.inject({ url: '/v1/datasets', headers: bearer('reader') })).statusCode);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const limited = await app.inject({ url: '/v1/datasets', headers: bearer('reader') });
    expect(limited.json().error.code).toBe('rate_limited');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // Other keys have their own bucket; bad keys are refused before any bucket is touched.
    expect((await app.inject({ url: '/v1/datasets', headers: bearer('other') })).statusCode).toBe(200);
    expect(
      (await app.inject({ url: '/v1/datasets', headers: { authorization: 'Bearer nope' } })).statusCode,
    ).toBe(401);
  });

  it('refuses a body over the limit with 413 (and authenticates first)', async () => {
    const { app, bearer } = await setup({ BODY_LIMIT_BYTES: 2048 });
    const payload = JSON.stringify({
      ...exportBody,
      filters: [{ column: 'symbol', op: 'in', value: Array(500).fill('ES') }],
    });
    const big = await app.inject({
      method: 'POST',
      url: '/v1/exports',
      headers: { ...bearer('reader'), 'content-type': 'application/json' },
      payload,
    });
    expect(big.statusCode).toBe(413);
    expect(big.json().error.code).toBe('payload_too_large');
    const anonymous = await app.inject({
      method: 'POST',
      url: '/v1/exports',
      headers: { 'content-type': 'application/json' },
      payload,
    });
    expect(anonymous.statusCode).toBe(401);
  });

  it('answers broken JSON, prototype poisoning and odd content types with 4xx JSON errors', async () => {
    const { app, bearer } = await setup();
    const headers = { ...bearer('reader'), 'content-type': 'application/json' };
    for (const payload of [
      '{"dataset":',
      '{"__proto__":{"admin":true},"dataset":"ticks","format":"csv"}',
      '[]',
      'null',
      '"x"',
    ]) {
      const r = await app.inject({ method: 'POST', url: '/v1/exports', headers, payload });
      expect(r.statusCode).toBe(400);
      expect(r.json().error.code).toMatch(/invalid_input/);
    }
    const xml = await app.inject({
      method: 'POST',
      url: '/v1/exports',
      headers: { ...bearer('reader'), 'content-type': 'application/xml' },
      payload: '<x/>',
    });
    expect(xml.statusCode).toBe(415);
    expect(xml.json().error).toBeDefined();
  });
});

describe('path traversal', () => {
  it('fails cleanly in dataset names, columns, partition_by, filters and ids', async () => {
    const { app, bearer, engine } = await setup();
    const bodies = [
      { dataset: '../../etc/passwd', format: 'csv' },
      { dataset: 'ticks/../products', format: 'csv' },
      { dataset: 'ticks', format: 'csv', columns: ['../../../etc/passwd'] },
      { dataset: 'ticks', format: 'parquet', partition_by: ['../../x'] },
      { dataset: 'ticks', format: 'parquet', partition_by: ['symbol/../../x'] },
      { dataset: 'ticks', format: 'csv', filters: [{ column: '../symbol', op: '=', value: 'x' }] },
    ];
    for (const payload of bodies) {
      const r = await app.inject({ method: 'POST', url: '/v1/exports', headers: bearer('reader'), payload });
      expect(r.statusCode, JSON.stringify(payload)).toBe(400);
      expect(r.json().error.code).toMatch(/invalid_input|invalid_query|unknown_dataset/);
    }
    expect(engine.jobs).toHaveLength(0);
    for (const url of ['/v1/exports/..%2F..%2Fetc%2Fpasswd', '/v1/exports/..', '/v1/exports/%00']) {
      expect((await app.inject({ url, headers: bearer('reader') })).statusCode).toBe(404);
    }
  });

  it('download tokens: traversal, tampering and expiry are 403s', async () => {
    const { app, bearer, clock } = await setup();
    for (const url of [
      '/v1/downloads/..%2F..%2Fetc%2Fpasswd',
      '/v1/downloads/%252E%252E',
      '/v1/downloads/e30.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
    ]) {
      const r = await app.inject({ url });
      expect(r.statusCode, url).toBe(403);
      expect(r.json().error.code).toBe('forbidden');
    }
    // Dot segments are resolved before routing: such paths leave the route and are unknown
    // routes (401 under /v1 without a key, 404 elsewhere), never a file.
    for (const url of [
      '/v1/downloads/..',
      '/v1/downloads/%2E%2E',
      '/v1/downloads/../exports',
      '/v1/downloads/../../etc/passwd',
    ]) {
      const r = await app.inject({ url });
      expect([401, 404], url).toContain(r.statusCode);
      expect(r.json().error.code).toMatch(/unauthorized|not_found/);
    }

    const created = await app.inject({
      method: 'POST',
      url: '/v1/exports',
      headers: bearer('reader'),
      payload: exportBody,
    });
    const url = pathOf(created.json().signed_url);
    expect((await app.inject({ url })).statusCode).toBe(200);
    const [payload, sig] = url.slice('/v1/downloads/'.length).split('.');
    const forged = Buffer.from(
      JSON.stringify({
        ...JSON.parse(Buffer.from(payload!, 'base64url').toString()),
        key: 'catalog/state.json',
      }),
    ).toString('base64url');
    expect((await app.inject({ url: `/v1/downloads/${forged}.${sig}` })).statusCode).toBe(403);
    const flipped = url.slice(0, -2) + (url.at(-2) === 'A' ? 'B' : 'A') + url.at(-1);
    expect((await app.inject({ url: flipped })).statusCode).toBe(403);
    clock.now += 3600 * 1000;
    const expired = await app.inject({ url });
    expect(expired.statusCode).toBe(403);
    expect(expired.json().error.message).toMatch(/expired/);
  });
});

describe('fuzzing POST /v1/exports', () => {
  it('never answers 5xx, whatever the body', async () => {
    const { app, bearer } = await setup();
    const name = fc.oneof(
      fc.constantFrom(
        'ticks',
        'products',
        'candles',
        'ts',
        'price',
        'symbol',
        'retailer',
        '__proto__',
        '../x',
        '',
      ),
      fc.string(),
    );
    const scalar = fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null));
    /** Mostly plausible values, sometimes any JSON at all. */
    const plausible = <T>(arb: fc.Arbitrary<T>) =>
      fc.oneof({ arbitrary: arb, weight: 5 }, { arbitrary: fc.jsonValue(), weight: 1 });
    const filter = fc.record({
      column: fc.oneof(fc.constantFrom('retailer', 'category', 'date', 'backup_timestamp'), name),
      op: fc.constantFrom('=', '!=', '<', '<=', '>', '>=', 'in', 'between', 'like', 'is_null', 'DROP'),
      value: fc.oneof(scalar, fc.array(scalar, { maxLength: 3 }), fc.constantFrom('2025-09-03', true)),
    });
    const optional = <T>(arb: fc.Arbitrary<T>) => fc.option(plausible(arb), { nil: undefined, freq: 2 });
    const defined = (b: Record<string, unknown>) =>
      Object.fromEntries(Object.entries(b).filter(([, v]) => v !== undefined));
    /** Anything goes in every field. */
    const noisy = fc
      .record({
        dataset: plausible(fc.oneof(fc.constantFrom('products', 'products', 'ticks', 'candles'), name)),
        format: fc.constantFrom('parquet', 'csv', 'json', 'xlsx'),
        compression: optional(fc.constantFrom('snappy', 'zstd', 'gzip', 'brotli', 'lz4', 'none', 'rar')),
        columns: optional(
          fc.oneof(fc.subarray(['retailer', 'category', 'date']), fc.array(name, { maxLength: 3 })),
        ),
        filters: optional(fc.array(filter, { maxLength: 3 })),
        date_range: optional(fc.record({ start: fc.oneof(scalar, fc.constant('2025-09-01')), end: scalar })),
        limit: optional(fc.oneof(fc.integer(), fc.double())),
        partition_by: optional(fc.array(name, { maxLength: 2 })),
        expires_in: optional(fc.integer()),
      })
      .map(defined);
    /** Well-formed requests with hostile text inside, so the accepted path and the scope check run too. */
    const sometimes = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 2 });
    const wellFormed = fc
      .record({
        dataset: fc.constantFrom('products', 'ticks', 'candles'),
        format: fc.constantFrom('parquet', 'csv', 'json'),
        columns: sometimes(fc.subarray(['retailer', 'category', 'date', 'batch_id'], { minLength: 1 })),
        filters: sometimes(
          fc.array(
            fc.oneof(
              fc.record({
                column: fc.constantFrom('retailer', 'category', 'batch_id'),
                op: fc.constantFrom('=', 'like'),
                value: fc.string(),
              }),
              fc.record({
                column: fc.constant('retailer'),
                op: fc.constant('in'),
                value: fc.array(fc.string(), { minLength: 1, maxLength: 3 }),
              }),
              fc.record({
                column: fc.constant('backup_id'),
                op: fc.constant('is_null'),
                value: fc.boolean(),
              }),
            ),
            { maxLength: 3 },
          ),
        ),
        date_range: sometimes(fc.constant({ start: '2025-09-01', end: '2025-09-30T12:00:00Z' })),
        limit: sometimes(fc.integer({ min: 1, max: 10_000 })),
      })
      .map(defined);
    const body = fc.oneof(
      { arbitrary: wellFormed, weight: 3 },
      { arbitrary: noisy, weight: 3 },
      { arbitrary: fc.jsonValue(), weight: 1 },
    );
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(body, async (payload) => {
        const r = await app.inject({
          method: 'POST',
          url: '/v1/exports',
          headers: { ...bearer('scoped'), 'content-type': 'application/json' },
          payload: JSON.stringify(payload),
        });
        statuses.set(r.statusCode, (statuses.get(r.statusCode) ?? 0) + 1);
        expect(r.statusCode, r.body).toBeLessThan(500);
        if (r.statusCode >= 400) expect(r.json().error.code).toEqual(expect.any(String));
      }),
      { numRuns: 400 },
    );
    // Both refusals and accepted exports must have been reached.
    expect(statuses.get(200)).toBeGreaterThan(20);
    expect(statuses.get(400)).toBeGreaterThan(20);
    expect(statuses.get(403)).toBeGreaterThan(20);
  });

  it('never answers 5xx for raw, non-JSON-shaped payloads', async () => {
    const { app, bearer } = await setup();
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: 'binary', maxLength: 200 }), async (payload) => {
        const r = await app.inject({
          method: 'POST',
          url: '/v1/exports',
          headers: { ...bearer('reader'), 'content-type': 'application/json' },
          payload,
        });
        expect(r.statusCode).toBeLessThan(500);
      }),
      { numRuns: 200 },
    );
  });
});
