import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '@parquetry/service';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_DATABASE_URL,
  parseConfigText,
  parseLoadConfig,
  pgLoaderEnvSchema,
  readLoadConfig,
} from './config.js';

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('load config', () => {
  it('fills defaults from a minimal config', () => {
    const c = parseLoadConfig({ database: { table_name: 'ticks' } });
    expect(c.database).toMatchObject({
      table_name: 'ticks',
      schema: 'public',
      if_table_exists: 'fail',
      schema_drift: 'fail',
      copy_format: 'auto',
      ledger: true,
      rejects: { to: 'table' },
    });
    expect(c.schema_config).toEqual({
      column_naming: 'snake',
      date_format: 'auto',
      data_type: {},
      rename: {},
    });
    expect(c.os_configuration).toMatchObject({ os_margin: 0.2, n_rows_sample: 10_000 });
    expect(c.validation_data.sample_size).toBe(20_480);
  });

  it('names the key of every bad value', () => {
    const e = errorOf(() =>
      parseLoadConfig({
        database: { table_name: 'bad name', if_table_exists: 'merge' },
        os_configuration: { os_margin: 2 },
        schema_config: { data_type: { price: 'money' } },
      }),
    );
    const text = e.message;
    expect(text).toMatch(/database\.table_name: must be a plain identifier/);
    expect(text).toMatch(/database\.if_table_exists: .*"fail"/);
    expect(text).toMatch(/os_configuration\.os_margin: /);
    expect(text).toMatch(/schema_config\.data_type\.price: unknown or unsupported type "money"/);
  });

  it('names unknown keys, one by one', () => {
    const e = errorOf(() => parseLoadConfig({ database: { table_name: 't', tabel: 'x' }, extra: 1 }));
    expect(e.message).toContain('database.tabel: unknown key');
    expect(e.message).toContain('extra: unknown key');
  });

  it('requires a path for file rejects', () => {
    const e = errorOf(() => parseLoadConfig({ database: { table_name: 't', rejects: { to: 'file' } } }));
    expect(e.message).toContain('database.rejects.path: rejects.to = file needs rejects.path');
  });

  it('normalizes cast types and decimal precision', () => {
    const c = parseLoadConfig({
      database: { table_name: 't' },
      schema_config: { data_type: { a: 'INT8', b: 'decimal(10, 2)' }, decimal_precision: [18, 4] },
    });
    expect(c.schema_config.data_type).toEqual({ a: 'bigint', b: 'numeric(10,2)' });
    expect(c.schema_config.decimal_precision).toEqual({ precision: 18, scale: 4 });
    expect(
      errorOf(() =>
        parseLoadConfig({ database: { table_name: 't' }, schema_config: { decimal_precision: [4, 6] } }),
      ).message,
    ).toContain('schema_config.decimal_precision: scale must not exceed precision');
  });

  const yaml = `
path: data/ticks.parquet
schema_config:
  column_naming: lower
  data_type:
    price: double
validation_data:
  sample_size: 1000
os_configuration:
  os_margin: 0.3
  n_rows_sample: 500
database:
  table_name: ticks
  if_table_exists: replace
`;
  const toml = `
path = "data/ticks.parquet"
[schema_config]
column_naming = "lower"
data_type = { price = "double" }
[validation_data]
sample_size = 1000
[os_configuration]
os_margin = 0.3
n_rows_sample = 500
[database]
table_name = "ticks"
if_table_exists = "replace"
`;

  it('reads the same config from YAML and TOML', () => {
    const a = parseConfigText(yaml, 'yaml');
    expect(a).toEqual(parseConfigText(toml, 'toml'));
    expect(a.schema_config.data_type).toEqual({ price: 'double precision' });
    expect(a.database.if_table_exists).toBe('replace');
  });

  it('reports parse errors with their line', () => {
    expect(errorOf(() => parseConfigText('[database\ntable_name = 1', 'toml', 'x.toml')).message).toMatch(
      /cannot parse x\.toml as TOML \(line 1/,
    );
    expect(errorOf(() => parseConfigText('database:\n  table_name: [a\n', 'yaml', 'x.yaml')).message).toMatch(
      /cannot parse x\.yaml as YAML \(line \d+/,
    );
  });

  it('reads files by extension and names the file in errors', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgl-config-'));
    writeFileSync(join(dir, 'load.toml'), toml);
    writeFileSync(join(dir, 'load.yml'), 'database: {table_name: 1}\n');
    writeFileSync(join(dir, 'load.ini'), '');
    expect((await readLoadConfig(join(dir, 'load.toml'))).database.table_name).toBe('ticks');
    await expect(readLoadConfig(join(dir, 'load.yml'))).rejects.toThrow(
      /load\.yml:\n\s+database\.table_name:/,
    );
    await expect(readLoadConfig(join(dir, 'load.ini'))).rejects.toThrow(/unknown extension/);
    await expect(readLoadConfig(join(dir, 'missing.yaml'))).rejects.toThrow(/cannot read load config/);
  });
});

describe('environment', () => {
  it('defaults DATABASE_URL and the probe port', () => {
    const env = pgLoaderEnvSchema.parse({});
    expect(env.DATABASE_URL).toBe(DEFAULT_DATABASE_URL);
    expect(DEFAULT_DATABASE_URL).toBe('postgres://postgres@127.0.0.1:5432/parquetry');
    expect(env.HTTP_PORT).toBe(9104);
  });
});
