import { type ColumnType, sqlIdent } from '@parquetry/lake';

/**
 * `product_prices_daily`, derived from `products`: per retailer, category and day, how many
 * products there were, how many had a usable price, and the min/avg/max of that price.
 *
 * Scraped products name and spell prices freely (`precio_oferta: 799990`, `p: "$3.100"`,
 * `Precio Normal: "$  1.199.990"`, `regularPrice: "8290"`, `currentPrice: " Precio x L : 23686"`).
 * A product's price is the first usable value among its columns in this order:
 *   1. an offer / current price (what the buyer pays): precio_oferta, oferta, sale_price,
 *      offer_price, current_price, precio_actual, precio_final, precio_internet, …;
 *   2. a generic price: price, precio, p, valor, precio_venta;
 *   3. a regular / list price: precio_normal, regular_price, list_price, precio_lista, ….
 * Names are compared with accents, case and separators removed (`Precio Normal` = `precio_normal`).
 * Numeric columns are used as they are; text is parsed by `textPriceSql`. Zero, negative and
 * unparseable values do not count.
 */

export const PRODUCT_PRICES_DAILY = 'product_prices_daily';

export const PRODUCT_PRICES_SCHEMA: Readonly<Record<string, ColumnType>> = {
  retailer: 'VARCHAR',
  category: 'VARCHAR',
  date: 'DATE',
  products: 'BIGINT',
  priced_products: 'BIGINT',
  min_price: 'DOUBLE',
  avg_price: 'DOUBLE',
  max_price: 'DOUBLE',
};

const OFFER = new Set([
  'preciooferta',
  'oferta',
  'offerprice',
  'saleprice',
  'currentprice',
  'precioactual',
  'preciofinal',
  'finalprice',
  'preciointernet',
  'preciopromocion',
  'promoprice',
]);
const GENERIC = new Set(['price', 'precio', 'p', 'valor', 'precioventa']);
const REGULAR = new Set([
  'precionormal',
  'regularprice',
  'listprice',
  'preciolista',
  'normalprice',
  'precioregular',
]);

/** `Precio Normal`, `precio_normal` and `precioNormal` all become `precionormal`. */
export function squashName(name: string): string {
  return name
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '');
}

export type PriceRole = 'offer' | 'generic' | 'regular';

export function priceRole(column: string): PriceRole | undefined {
  const s = squashName(column);
  if (OFFER.has(s)) return 'offer';
  if (GENERIC.has(s)) return 'generic';
  if (REGULAR.has(s)) return 'regular';
  return undefined;
}

const NUMERIC =
  /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|FLOAT|DOUBLE|DECIMAL.*)$/;
const ROLE_ORDER: readonly PriceRole[] = ['offer', 'generic', 'regular'];

/** Price columns among these (name → DuckDB type as DESCRIBE prints it), in the order they are tried. */
export function priceColumns(
  columns: Readonly<Record<string, string>>,
): { name: string; numeric: boolean }[] {
  const found: { name: string; numeric: boolean; role: PriceRole }[] = [];
  for (const [name, type] of Object.entries(columns)) {
    const role = priceRole(name);
    const numeric = NUMERIC.test(type);
    if (role && (numeric || type === 'VARCHAR')) found.push({ name, numeric, role });
  }
  return found
    .sort((a, b) => ROLE_ORDER.indexOf(a.role) - ROLE_ORDER.indexOf(b.role))
    .map(({ name, numeric }) => ({ name, numeric }));
}

/**
 * SQL parsing a text price to DOUBLE, or NULL. Accepted: an optional currency code or sign
 * (`$`, `CLP`, `US$`, `€`) then digits with separators. A dot or comma followed by exactly
 * three digits (repeated) is a thousands separator — the sources are es-CL / es-AR, where
 * `$3.100` is 3100 and `$1.199.990` is 1199990; a single dot or comma followed by one or two
 * digits is a decimal mark. Anything else (`$NaN`, `Precio x L : 23686`, `3.1.0`) is NULL.
 */
export function textPriceSql(expr: string): string {
  const t = `trim(${expr})`;
  const digits = `regexp_replace(${t}, '^[A-Za-z]{0,3}[$€£]?\\s*', '')`;
  const d = `replace(${digits}, ' ', '')`;
  return `(CASE
    WHEN NOT regexp_full_match(${t}, '[A-Za-z]{0,3}[$€£]?\\s*[0-9][0-9., ]*') THEN NULL
    WHEN regexp_full_match(${d}, '[0-9]{1,3}(\\.[0-9]{3})+(,[0-9]{1,2})?') THEN TRY_CAST(replace(replace(${d}, '.', ''), ',', '.') AS DOUBLE)
    WHEN regexp_full_match(${d}, '[0-9]{1,3}(,[0-9]{3})+(\\.[0-9]{1,2})?') THEN TRY_CAST(replace(${d}, ',', '') AS DOUBLE)
    WHEN regexp_full_match(${d}, '[0-9]+,[0-9]{1,2}') THEN TRY_CAST(replace(${d}, ',', '.') AS DOUBLE)
    WHEN regexp_full_match(${d}, '[0-9]+(\\.[0-9]{1,2})?') THEN TRY_CAST(${d} AS DOUBLE)
    ELSE NULL END)`;
}

/** The price of one product row: the first positive value of the price columns, in order. */
export function priceSql(columns: readonly { name: string; numeric: boolean }[]): string {
  if (columns.length === 0) return 'CAST(NULL AS DOUBLE)';
  const parts = columns.map((c) => {
    const value = c.numeric ? `CAST(${sqlIdent(c.name)} AS DOUBLE)` : textPriceSql(sqlIdent(c.name));
    return `(CASE WHEN ${value} > 0 THEN ${value} END)`;
  });
  return parts.length === 1 ? parts[0]! : `COALESCE(${parts.join(', ')})`;
}

/**
 * The derived relation over `productsSource` (a `read_parquet(...)` of products files whose
 * union schema is `columns`), with exactly PRODUCT_PRICES_SCHEMA's columns.
 */
export function productPricesDailySql(
  productsSource: string,
  columns: Readonly<Record<string, string>>,
): string {
  const price = priceSql(priceColumns(columns));
  return (
    `(SELECT "retailer", "category", "date", CAST(count(*) AS BIGINT) AS "products", ` +
    `CAST(count("price") AS BIGINT) AS "priced_products", min("price") AS "min_price", ` +
    `avg("price") AS "avg_price", max("price") AS "max_price" ` +
    `FROM (SELECT CAST("retailer" AS VARCHAR) AS "retailer", CAST("category" AS VARCHAR) AS "category", ` +
    `CAST("date" AS DATE) AS "date", ${price} AS "price" FROM ${productsSource}) ` +
    `GROUP BY "retailer", "category", "date")`
  );
}
