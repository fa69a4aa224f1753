import { request as httpRequest } from 'node:http';
import { decodePartitionValue } from '@parquetry/lake';
import { requireServers } from '@parquetry/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  freePort,
  HOSTILE,
  type LakeKind,
  openTestLake,
  type SourceRow,
  startApi,
  type TestKeys,
  type TestLake,
  type TickRow,
  testConfig,
  writeKeys,
  writeProducts,
  writeTicks,
} from './lake-fixture.js';
import { expectRows, normalize, project, readBoth } from './read-back.js';
import { expectedPresignSignature } from './sigv4.js';

/**
 * TEST SUITE (run by exports-fs.int.test.ts and exports-s3.int.test.ts): export-api over a real lake: NATS catalog, Parquet files written the way ingest-backup writes
 * them, the object store on disk and on s3rver; exports downloaded through their signed URLs
 * and read back with DuckDB and without it.
 */

type View = {
  export_id: string;
  status: string;
  compression: string;
  row_count: number | null;
  file_size: number | null;
  file_path: string | null;
  signed_url: string | null;
  expires_at: string | null;
  schema: Record<string, string>;
  files: { file_path: string; file_size: number; signed_url: string }[];
  error?: { code: string; message: string };
};

const FORMATS: [string, string[]][] = [
  ['parquet', ['snappy', 'zstd', 'gzip', 'brotli', 'lz4', 'none']],
  ['csv', ['none', 'gzip']],
  ['json', ['none', 'gzip']],
];

export async function exportSuite(kind: LakeKind): Promise<void> {
  const skip = await requireServers({ nats: true });
  describe.skipIf(skip)(`exports from a ${kind} lake`, () => {
    defineTests(kind);
  });
}

function defineTests(kind: LakeKind): void {
  let lake: TestLake;
  let keys: TestKeys;
  let products: SourceRow[];
  let ticks: TickRow[];
  let server: Awaited<ReturnType<typeof startApi>>;
  let background: Awaited<ReturnType<typeof startApi>>;
  let base: string;
  let n = 0;

  beforeAll(async () => {
    lake = await openTestLake(kind);
    products = await writeProducts(lake);
    ticks = await writeTicks(lake);
    keys = writeKeys(lake.dir.path);
    server = await startApi(testConfig(lake, keys, await freePort()), lake);
    base = server.base;
    // A second instance on the same lake that answers at once (202), exports finishing later.
    background = await startApi(testConfig(lake, keys, await freePort(), { EXPORT_SYNC_WAIT_MS: '0' }), lake);
  });

  afterAll(async () => {
    await background?.close();
    await server?.close();
    await lake?.close();
  });

  const auth = (key: string) => ({ authorization: `Bearer ${key}` });
  const post = (body: unknown, key = keys.reader, at = base) =>
    fetch(`${at}/v1/exports`, {
      method: 'POST',
      headers: { ...auth(key), 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  async function exportOk(body: unknown, key = keys.reader): Promise<View> {
    const r = await post(body, key);
    const view = (await r.json()) as View;
    expect(r.status, JSON.stringify(view)).toBe(200);
    expect(view.status).toBe('succeeded');
    return view;
  }

  async function download(url: string): Promise<Buffer> {
    const r = await fetch(url);
    expect(r.status, url).toBe(200);
    return Buffer.from(await r.arrayBuffer());
  }

  async function readExport(view: View, format: string, compression: string, file = view.files[0]!) {
    expect(file.signed_url).toBeTruthy();
    const bytes = await download(file.signed_url);
    expect(bytes.length).toBe(file.file_size);
    return readBoth(lake.duck.conn, lake.dir.path, `dl-${n++}`, bytes, format, compression);
  }

  it('gives back every source row in every format and compression, read by DuckDB and independently', async () => {
    // Every product (real scraped data, every free-form field) once per format…
    for (const format of ['parquet', 'csv', 'json']) {
      const view = await exportOk({ dataset: 'products', format });
      expect(view.row_count).toBe(products.length);
      expect(view.files).toHaveLength(1);
      expect(view.signed_url).toBe(view.files[0]!.signed_url);
      expect(view.file_path).toMatch(new RegExp(`^exports/${view.export_id}/data\\.`));
      expect(Object.keys(view.schema).length).toBeGreaterThan(20);
      const expected = products.map((p) => project(p, view.schema));
      expectRows(
        await readExport(view, format, format === 'parquet' ? 'snappy' : 'none'),
        expected,
        view.schema,
      );
    }
    // …and every tick (typed: timestamps, doubles, bigints, NULLs, hostile text) in every compression.
    for (const [format, compressions] of FORMATS) {
      for (const compression of compressions) {
        const view = await exportOk({ dataset: 'ticks', format, compression });
        expect(view.compression).toBe(compression);
        expect(view.row_count).toBe(ticks.length);
        expectRows(await readExport(view, format, compression), ticks, view.schema);
      }
    }
  });

  it('applies filters, columns, date_range and limit like the source rows say', async () => {
    const filters = [
      { column: 'symbol', op: '=', value: 'ES' },
      { column: 'price', op: 'between', value: [5010, 5060] },
      { column: 'side', op: 'is_null', value: false },
    ];
    const columns = ['ts', 'price', 'trade_id', 'side', 'stream_seq'];
    const match = (t: TickRow) => t.symbol === 'ES' && t.price >= 5010 && t.price <= 5060 && t.side !== null;
    const pick = (t: TickRow) => Object.fromEntries(columns.map((c) => [c, t[c as keyof TickRow]]));

    const all = await exportOk({
      dataset: 'ticks',
      format: 'parquet',
      compression: 'zstd',
      filters,
      columns,
    });
    expect(Object.keys(all.schema)).toEqual(columns);
    const expected = ticks.filter(match).map(pick);
    expect(expected.length).toBeGreaterThan(50);
    expectRows(await readExport(all, 'parquet', 'zstd'), expected, all.schema);

    // limit: the oldest rows first (ts is unique in the fixture, so these are exactly defined).
    const limited = await exportOk({ dataset: 'ticks', format: 'csv', filters, columns, limit: 25 });
    expect(limited.row_count).toBe(25);
    const oldest = ticks
      .filter(match)
      .sort((a, b) => a.ts.localeCompare(b.ts))
      .slice(0, 25)
      .map(pick);
    expectRows(await readExport(limited, 'csv', 'none'), oldest, limited.schema);

    // date_range on the time column: [start, end).
    const range = { start: '2025-09-02T09:40:00Z', end: '2025-09-02T09:50:00.5Z' };
    const ranged = await exportOk({
      dataset: 'ticks',
      format: 'json',
      compression: 'gzip',
      date_range: range,
    });
    const inRange = ticks.filter(
      (t) => t.ts >= '2025-09-02T09:40:00.000Z' && t.ts < '2025-09-02T09:50:00.500Z',
    );
    expect(inRange.length).toBeGreaterThan(0);
    expectRows(await readExport(ranged, 'json', 'gzip'), inRange, ranged.schema);

    // Free-form product fields filter like fixed ones; hostile values are just values.
    const pf = await exportOk({
      dataset: 'products',
      format: 'csv',
      compression: 'gzip',
      columns: ['retailer', 'category', 'batch_id', 'p'],
      filters: [
        { column: 'retailer', op: 'in', value: ['jumbo', 'changomas', "x'); DROP TABLE t; --"] },
        { column: 'p', op: 'like', value: '$1%' },
      ],
    });
    const pExpected = products
      .filter(
        (r) => ['jumbo', 'changomas'].includes(String(r.retailer)) && String(r.p ?? '').startsWith('$1'),
      )
      .map((r) => project(r, pf.schema));
    expect(pExpected.length).toBeGreaterThan(100);
    expectRows(await readExport(pf, 'csv', 'gzip'), pExpected, pf.schema);
  });

  it('estimates from the catalog what an export would read, with the same checks', async () => {
    const est = async (body: unknown, key = keys.reader) =>
      fetch(`${base}/v1/exports/estimate`, {
        method: 'POST',
        headers: { ...auth(key), 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const r = await est({
      dataset: 'ticks',
      format: 'parquet',
      filters: [{ column: 'symbol', op: '=', value: 'NQ' }],
    });
    expect(r.status).toBe(200);
    const nq = ticks.filter((t) => t.symbol === 'NQ');
    expect(await r.json()).toEqual({
      dataset: 'ticks',
      source_files: new Set(nq.map((t) => t.date)).size,
      source_rows: nq.length,
      source_bytes: expect.any(Number),
      max_rows: nq.length,
    });
    const limited = (await (await est({ dataset: 'ticks', format: 'csv', limit: 7 })).json()) as {
      max_rows: number;
    };
    expect(limited.max_rows).toBe(7);
    expect((await est({ dataset: 'products', format: 'csv' }, keys.ticksOnly)).status).toBe(403);
    expect((await est({ dataset: 'ticks', format: 'csv', columns: ['nope'] })).status).toBe(400);
  });

  it('partition_by writes one file per value, each with its own signed URL, inside the export', async () => {
    // Hostile trade ids as partition values: '..', '.', '/', '%2e', '=', the default token, ''.
    const view = await exportOk({ dataset: 'ticks', format: 'parquet', partition_by: ['trade_id'] });
    const values = new Set(ticks.map((t) => t.trade_id));
    expect(view.files).toHaveLength(values.size);
    expect(view.signed_url).toBeNull();
    expect(view.file_path).toBe(`exports/${view.export_id}/`);
    expect(new Set(view.files.map((f) => f.signed_url)).size).toBe(view.files.length);
    const seen = new Set<string>();
    let total = 0;
    for (const file of view.files) {
      const m = new RegExp(`^exports/${view.export_id}/trade_id=([^/]+)/[^/]+\\.parquet$`).exec(
        file.file_path,
      );
      expect(m, file.file_path).not.toBeNull();
      const value = decodePartitionValue(m![1]!);
      const read = await readExport(view, 'parquet', 'snappy', file);
      const got = new Set(read.own.map((r) => String(r.trade_id ?? '')));
      expect([...got]).toEqual([value]);
      seen.add(value);
      total += read.own.length;
      expectRows(
        read,
        ticks.filter((t) => t.trade_id === value),
        view.schema,
      );
    }
    expect([...seen].sort()).toEqual([...values].sort());
    expect(total).toBe(ticks.length);
    for (const h of HOSTILE) expect(seen.has(h)).toBe(true);

    // NDJSON (DuckDB's JSON writer cannot partition: staged, then converted) by retailer.
    const retailers = ['jumbo', 'vea', 'tottus'];
    const byRetailer = await exportOk({
      dataset: 'products',
      format: 'json',
      partition_by: ['retailer'],
      columns: ['retailer', 'category', 'batch_id', 'backup_timestamp'],
      filters: [{ column: 'retailer', op: 'in', value: retailers }],
    });
    expect(byRetailer.files.map((f) => f.file_path.split('/')[2]).sort()).toEqual(
      retailers.map((r) => `retailer=${r}`).sort(),
    );
    for (const file of byRetailer.files) {
      const retailer = file.file_path.split('/')[2]!.slice('retailer='.length);
      const read = await readExport(byRetailer, 'json', 'none', file);
      expectRows(
        read,
        products.filter((p) => p.retailer === retailer).map((p) => project(p, byRetailer.schema)),
        byRetailer.schema,
      );
    }
  });

  it('product_prices_daily counts the products of each retailer, category and day', async () => {
    const view = await exportOk({ dataset: 'product_prices_daily', format: 'parquet' });
    const read = await readExport(view, 'parquet', 'snappy');
    const counts = new Map<string, number>();
    for (const p of products) {
      const k = `${p.retailer}|${p.category}|${p.date}`;
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    expect(read.own).toHaveLength(counts.size);
    for (const r of read.own) {
      const k = `${r.retailer}|${r.category}|${normalize(r.date, 'DATE')}`;
      expect(Number(r.products), k).toBe(counts.get(k));
      expect(Number(r.priced_products)).toBeLessThanOrEqual(Number(r.products));
      if (r.min_price !== null) {
        expect(Number(r.min_price)).toBeLessThanOrEqual(Number(r.avg_price) + 1e-6);
        expect(Number(r.avg_price)).toBeLessThanOrEqual(Number(r.max_price) + 1e-6);
      }
    }
    // jumbo's `p` is text like "$3.100" (es-CL thousands): at least some priced.
    const jumbo = read.own.filter((r) => r.retailer === 'jumbo');
    expect(jumbo.some((r) => Number(r.priced_products) > 0)).toBe(true);
  });

  it('runs exports in the background: 202 with status running, then GET /v1/exports/:id', async () => {
    const r = await post(
      { dataset: 'ticks', format: 'csv', compression: 'gzip' },
      keys.reader,
      background.base,
    );
    expect(r.status).toBe(202);
    const first = (await r.json()) as View;
    expect(first.status).toBe('running');
    expect(first.signed_url).toBeNull();
    let view = first;
    for (let i = 0; i < 300 && view.status === 'running'; i++) {
      await new Promise((res) => setTimeout(res, 50));
      const g = await fetch(`${background.base}/v1/exports/${first.export_id}`, {
        headers: auth(keys.reader),
      });
      expect(g.status).toBe(200);
      view = (await g.json()) as View;
    }
    expect(view.status).toBe('succeeded');
    expect(view.row_count).toBe(ticks.length);
    expectRows(await readExport(view, 'csv', 'gzip'), ticks, view.schema);
  });

  it('answers 429 past the per-key rate limit, with retry-after, without touching other keys', async () => {
    // The configured limit is 120 a minute per key (RATE_LIMIT_PER_MIN default): a bucket of 120
    // that refills 2 a second, so the first refusal comes after 120 plus what refilled meanwhile.
    const started = Date.now();
    let allowed = 0;
    let refused: Response | undefined;
    while (!refused && allowed < 400) {
      const r = await fetch(`${base}/v1/datasets`, { headers: auth(keys.limited) });
      if (r.status === 429) refused = r;
      else {
        expect(r.status).toBe(200);
        allowed++;
        await r.arrayBuffer();
      }
    }
    const refill = Math.ceil(((Date.now() - started) / 1000) * 2);
    expect(refused).toBeDefined();
    expect(allowed).toBeGreaterThanOrEqual(120);
    expect(allowed).toBeLessThanOrEqual(120 + refill);
    expect(Number(refused!.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await refused!.json()) as { error: { code: string } }).error.code).toBe('rate_limited');
    const other = await fetch(`${base}/v1/datasets`, { headers: auth(keys.ticksOnly) });
    expect(other.status).toBe(200);
  });

  it('refuses missing, wrong and revoked keys alike (401), out-of-scope datasets (403), other keys’ exports (404)', async () => {
    const bodies: string[] = [];
    for (const headers of [{}, auth('pq_not-a-real-key'), auth(keys.revoked), { authorization: 'Basic x' }]) {
      const r = await fetch(`${base}/v1/exports`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify({ dataset: 'ticks', format: 'csv' }),
      });
      expect(r.status).toBe(401);
      bodies.push(await r.text());
    }
    expect(new Set(bodies).size).toBe(1);

    const denied = await post({ dataset: 'products', format: 'csv' }, keys.ticksOnly);
    expect(denied.status).toBe(403);
    expect(((await denied.json()) as { error: { code: string } }).error.code).toBe('forbidden');
    // Derived from products: the same scope rules.
    expect((await post({ dataset: 'product_prices_daily', format: 'csv' }, keys.ticksOnly)).status).toBe(403);

    const mine = await exportOk({ dataset: 'ticks', format: 'csv', limit: 3 });
    const theirs = await fetch(`${base}/v1/exports/${mine.export_id}`, { headers: auth(keys.other) });
    expect(theirs.status).toBe(404);
    const missing = await fetch(`${base}/v1/exports/00000000-0000-0000-0000-000000000000`, {
      headers: auth(keys.other),
    });
    expect(await theirs.text()).toBe(await missing.text());
    expect((await fetch(`${base}/v1/exports/${mine.export_id}`, { headers: auth(keys.reader) })).status).toBe(
      200,
    );

    const unknown = await post({ dataset: 'nope', format: 'csv' });
    expect(unknown.status).toBe(400);
    const err = (await unknown.json()) as { error: { details: { valid: string[] } } };
    expect(err.error.details.valid).toEqual(
      expect.arrayContaining(['products', 'ticks', 'product_prices_daily']),
    );
  });

  it('row scopes hold on every export of a scoped key, with or without its own filters', async () => {
    const view = await exportOk(
      { dataset: 'products', format: 'parquet', columns: ['retailer', 'batch_id'] },
      keys.scoped,
    );
    const expected = products.filter((p) => p.retailer === 'jumbo' || p.retailer === 'vea');
    expect(view.row_count).toBe(expected.length);
    expectRows(
      await readExport(view, 'parquet', 'snappy'),
      expected.map((p) => project(p, view.schema)),
      view.schema,
    );
    // Asking for what the scope excludes gives nothing, not an error.
    const none = await exportOk(
      { dataset: 'products', format: 'csv', filters: [{ column: 'retailer', op: '=', value: 'changomas' }] },
      keys.scoped,
    );
    expect(none.row_count).toBe(0);
    // And the derived dataset is scoped too.
    const daily = await exportOk({ dataset: 'product_prices_daily', format: 'parquet' }, keys.scoped);
    const read = await readExport(daily, 'parquet', 'snappy');
    expect(new Set(read.own.map((r) => r.retailer))).toEqual(new Set(['jumbo', 'vea']));
  });

  it('signed URLs: presigned on S3, /v1/downloads/<token> on disk; tampered or expired links are 403', async () => {
    const view = await exportOk({ dataset: 'ticks', format: 'csv', limit: 10 });
    const url = new URL(view.signed_url!);
    if (kind === 's3') {
      expect(url.searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
      expect(url.origin).toBe(lake.s3!.endpoint);
    } else {
      expect(url.origin).toBe(base);
      expect(url.pathname.startsWith('/v1/downloads/')).toBe(true);
    }
    expect((await fetch(url)).status).toBe(200);

    const tampered: string[] = [];
    if (kind === 's3') {
      // s3rver does not check V4 signatures (real S3 does): recompute it independently, for this
      // object and this expiry; a changed key, expiry or signature no longer matches.
      const secret = lake.s3!.env.AWS_SECRET_ACCESS_KEY!;
      expect(expectedPresignSignature(url, secret)).toBe(url.searchParams.get('X-Amz-Signature'));
      expect(url.searchParams.get('X-Amz-Expires')).toBe('3600');
      expect(decodeURIComponent(url.pathname)).toMatch(new RegExp(`/exports/${view.export_id}/data\\.csv$`));
      const other = new URL(url);
      other.pathname = url.pathname.replace(/data\.csv$/, 'other.csv');
      expect(expectedPresignSignature(other, secret)).not.toBe(url.searchParams.get('X-Amz-Signature'));
      const longer = new URL(url);
      longer.searchParams.set('X-Amz-Expires', '604800');
      expect(expectedPresignSignature(longer, secret)).not.toBe(url.searchParams.get('X-Amz-Signature'));
      // What s3rver does check: the credential.
      const forged = new URL(url);
      forged.searchParams.set(
        'X-Amz-Credential',
        url.searchParams.get('X-Amz-Credential')!.replace(/^[^/]+/, 'FORGED'),
      );
      tampered.push(forged.href);
    } else {
      const token = url.pathname.slice('/v1/downloads/'.length);
      const [payload, sig] = token.split('.') as [string, string];
      const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
      tampered.push(`${base}/v1/downloads/${payload}.${flip(sig, 3)}`);
      tampered.push(`${base}/v1/downloads/${flip(payload, 5)}.${sig}`);
      // Another object, same signature: the payload names the key, so it cannot be swapped.
      const p = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { key: string };
      const swapped = Buffer.from(
        JSON.stringify({ ...p, key: p.key.replace('data.csv', '../../x') }),
      ).toString('base64url');
      tampered.push(`${base}/v1/downloads/${swapped}.${sig}`);
    }
    for (const t of tampered) expect((await fetch(t)).status, t).toBe(403);

    const short = await exportOk({ dataset: 'ticks', format: 'csv', limit: 5, expires_in: 1 });
    expect(Date.parse(short.expires_at!) - Date.now()).toBeLessThanOrEqual(1000);
    await new Promise((r) => setTimeout(r, 2100));
    expect((await fetch(short.signed_url!)).status).toBe(403);
    // GET /v1/exports/:id signs fresh links.
    const again = (await (
      await fetch(`${base}/v1/exports/${short.export_id}`, { headers: auth(keys.reader) })
    ).json()) as View;
    expect((await fetch(again.signed_url!)).status).toBe(200);

    // Over the configured maximum: refused, not shortened.
    expect((await post({ dataset: 'ticks', format: 'csv', expires_in: 10_000_000 })).status).toBe(400);
  });

  it('path traversal attempts fail cleanly', async () => {
    const raw = (path: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const u = new URL(base);
        const req = httpRequest(
          { host: u.hostname, port: u.port, path, method: 'GET', headers: auth(keys.reader) },
          (res) => {
            let body = '';
            res.on('data', (c) => {
              body += c;
            });
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          },
        );
        req.on('error', reject);
        req.end();
      });
    for (const path of [
      '/v1/downloads/../../../../etc/passwd',
      '/v1/downloads/..%2F..%2F..%2Fetc%2Fpasswd',
      '/v1/downloads/%2e%2e/%2e%2e/keys.json',
      '/v1/exports/..%2F..%2Fetc%2Fpasswd',
      '/v1/exports/../../etc/passwd',
      `/v1/downloads/${'A'.repeat(3000)}`,
    ]) {
      const r = await raw(path);
      expect([400, 403, 404, 414], path).toContain(r.status);
      expect(r.body).not.toContain('root:');
      expect(r.body).not.toContain('pq_');
      expect(JSON.parse(r.body), `${path} → ${r.body}`).toHaveProperty('error.code');
    }
    for (const body of [
      { dataset: '../products', format: 'csv' },
      { dataset: 'products/../ticks', format: 'csv' },
      { dataset: 'ticks', format: 'csv', columns: ['../../etc/passwd'] },
      { dataset: 'ticks', format: 'csv', partition_by: ['../x'] },
      { dataset: 'ticks', format: 'csv', filters: [{ column: 'symbol/../../x', op: '=', value: 'ES' }] },
      { dataset: 'ticks', format: '../parquet' },
    ]) {
      const r = await post(body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBeTruthy();
    }
  });
}
