/**
 * Prices as scrapers write them: `899990`, `$3.100` (dot thousands), `$ 1.234,56` (comma
 * decimals), `1,299.00` (comma thousands), `$NaN`. As SQL so DuckDB parses a whole column in one
 * pass. A lone separator followed by exactly three digits is read as thousands (`3.100` = 3100,
 * the Latin American habit this lake's scrapers see), any other lone separator as a decimal
 * point. Anything else (no digits, `1.2.3`) is NULL.
 */
export function priceTextSql(textExpr: string): string {
  const s = `regexp_replace(${textExpr}, '[^0-9.,]', '', 'g')`;
  return `(CASE
    WHEN regexp_full_match(${s}, '\\d{1,3}(\\.\\d{3})+(,\\d+)?') THEN TRY_CAST(replace(replace(${s}, '.', ''), ',', '.') AS DOUBLE)
    WHEN regexp_full_match(${s}, '\\d{1,3}(,\\d{3})+(\\.\\d+)?') THEN TRY_CAST(replace(${s}, ',', '') AS DOUBLE)
    ELSE TRY_CAST(replace(${s}, ',', '.') AS DOUBLE)
  END)`;
}

const NUMERIC = /^(U?(TINY|SMALL|BIG|HUGE)?INT(EGER)?|FLOAT|DOUBLE|REAL|DECIMAL(\(.*\))?)$/i;

export function isNumericType(duckdbType: string): boolean {
  return NUMERIC.test(duckdbType.trim());
}

/** Columns `analyze` reports prices for: `precio*` / `price*`, numeric or text. */
export function isPriceColumn(name: string, duckdbType: string): boolean {
  return /^(precio|price)/i.test(name) && (isNumericType(duckdbType) || duckdbType === 'VARCHAR');
}

/** Columns `analyze` reports top values for: `marca` / `brand`, text. */
export function isBrandColumn(name: string, duckdbType: string): boolean {
  return /marca|brand/i.test(name) && duckdbType === 'VARCHAR';
}
