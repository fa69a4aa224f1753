// The demo scraper's input: every real scraped record under shared/data/products, as product
// batches of the contract (DESIGN.md "Product batch"). Plain ESM with no dependencies, so
// `pnpm start` needs nothing beyond the runtime packages. The same sources as testkit's
// productFixtureBatches (a dev-only package that start must not load); ids and timestamps
// are the demo's own: each scrape session gets fresh batch ids and scraped_at = now.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** ../shared/data beside the checkout (override with PARQUETRY_SHARED_DATA), like testkit's sharedDataDir. */
export function sharedDataDir() {
  if (process.env.PARQUETRY_SHARED_DATA) return process.env.PARQUETRY_SHARED_DATA;
  return resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../shared/data');
}

/** Category names → the contract's [a-z0-9_-]{1,64}: accents folded, everything else to `-`. */
export function slug(name) {
  const s = String(name)
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 64);
  return s === '' ? 'uncategorized' : s;
}

/** RFC-4180 CSV (quotes, doubled quotes, CRLF, BOM, `,` or `;` guessed from the header). */
export function parseCsv(text) {
  const src = text.replace(/^\uFEFF/, '');
  const firstLine = src.slice(0, src.indexOf('\n') >>> 0);
  const sep = (firstLine.match(/;/g)?.length ?? 0) > (firstLine.match(/,/g)?.length ?? 0) ? ';' : ',';
  const rows = [];
  let row = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (quoted) {
      if (c === '"' && src[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === sep) {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && src[i + 1] === '\n') i++;
      row.push(field);
      if (row.some((f) => f !== '')) rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  row.push(field);
  if (row.some((f) => f !== '')) rows.push(row);
  return rows;
}

function csvRecords(text) {
  const [header, ...rows] = parseCsv(text);
  if (!header) return [];
  const names = header.map((h, i) => (h.trim() === '' ? `column_${i}` : h));
  return rows.map((r) => Object.fromEntries(names.map((n, i) => [n, r[i] ?? ''])));
}

function categoryJson(path, retailer) {
  const data = JSON.parse(readFileSync(path, 'utf8').replace(/^\uFEFF/, ''));
  const categories = new Map();
  for (const [name, products] of Object.entries(data)) {
    if (!Array.isArray(products)) continue;
    const key = slug(name);
    categories.set(key, [...(categories.get(key) ?? []), ...products]);
  }
  return { retailer, categories };
}

/**
 * Every real record, grouped by retailer and category: `[{retailer, categories: Map}]`.
 * Returns [] when the directory is missing (the demo then runs without a scraper).
 */
export function loadProductSources(dir = join(sharedDataDir(), 'products')) {
  if (!existsSync(dir)) return [];
  const sources = [];
  for (const r of ['jumbo', 'vea', 'changomas']) {
    const f = join(dir, `${r}.json`);
    if (existsSync(f)) sources.push(categoryJson(f, r));
  }
  const beer = join(dir, 'chile-cervezas-2020');
  for (const r of ['lider', 'tottus']) {
    const f = join(beer, `cervezas-${r}.json`);
    if (existsSync(f)) sources.push(categoryJson(f, r));
  }
  const phones = join(dir, 'chile-iphones-2024');
  if (existsSync(phones)) {
    for (const f of readdirSync(phones).filter((x) => x.endsWith('.csv'))) {
      const m = /^productos_?(.*)\.csv$/i.exec(basename(f));
      const retailer = slug(m?.[1] || 'final') === 'final' ? 'iccd-final' : slug(m[1]);
      const records = csvRecords(readFileSync(join(phones, f), 'utf8'));
      sources.push({ retailer, categories: new Map([['smartphones', records]]) });
    }
  }
  return sources;
}

/**
 * One scrape session over the sources: batches of at most `batchSize` products with ids unique
 * to the session (`demo-<session>-<retailer>-<category>-<n>`) and `scraped_at` = `now`.
 */
export function sessionBatches(sources, { session, now = new Date(), batchSize = 300 }) {
  const out = [];
  for (const src of sources) {
    for (const [category, products] of src.categories) {
      for (let i = 0, n = 0; i < products.length; i += batchSize, n++) {
        out.push({
          batch_id: `demo-${session}-${src.retailer}-${category}-${String(n).padStart(4, '0')}`,
          retailer: src.retailer,
          category,
          scraped_at: now.toISOString(),
          session_id: `demo_${session}`,
          source_urls: [`demo://${src.retailer}/${category}`],
          execution_time: 1.5,
          success_rate: 1,
          errors: [],
          warnings: [],
          products: products.slice(i, i + batchSize),
        });
      }
    }
  }
  return out;
}
