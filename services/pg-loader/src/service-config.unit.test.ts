import { ConfigError, loadConfig } from '@parquetry/service';
import { describe, expect, it } from 'vitest';
import { diffLiveFiles } from './lake-sync.js';
import { followLoadConfig, parseDatasetTables, pgLoaderServiceSchema } from './service-config.js';

describe('PG_LOADER_DATASETS', () => {
  it('maps datasets to tables, by default to tables of the same name', () => {
    expect(parseDatasetTables('products, ticks:lake_ticks', 'lake')).toEqual([
      { dataset: 'products', table: { schema: 'lake', name: 'products' } },
      { dataset: 'ticks', table: { schema: 'lake', name: 'lake_ticks' } },
    ]);
  });

  it.each([
    ['trades', /unknown dataset "trades"/],
    ['products,products', /listed twice/],
    ['products:t,ticks:t', /table "t" is listed twice/],
    ['ticks:bad-name', /not a plain table name/],
    ['ticks:a:b', /dataset or dataset:table/],
    [' , ', /no dataset/],
  ])('refuses %j', (value, message) => {
    expect(() => parseDatasetTables(value, 'public')).toThrow(message);
  });

  it('stops the service with a message naming the variable', () => {
    let err: unknown;
    try {
      loadConfig(pgLoaderServiceSchema, { PG_LOADER_DATASETS: 'products,trades' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/PG_LOADER_DATASETS: unknown dataset "trades"/);
  });

  it('has defaults for every variable and derives the load config of a table', () => {
    const c = loadConfig(pgLoaderServiceSchema, {});
    expect(c.datasets.map((d) => d.dataset)).toEqual(['products', 'ticks', 'candles']);
    expect(c).toMatchObject({ HTTP_PORT: 9104, PG_LOADER_SCHEMA_DRIFT: 'evolve', PG_LOADER_MEMORY_MB: 256 });
    const load = followLoadConfig(c, { schema: 'public', name: 'ticks' });
    expect(load.database).toMatchObject({
      table_name: 'ticks',
      if_table_exists: 'append',
      schema_drift: 'evolve',
      ledger: true,
    });
    expect(load.schema_config.column_naming).toBe('preserve');
    expect(load.os_configuration.memory_limit_mb).toBe(256);
  });
});

describe('diffLiveFiles', () => {
  it('adds live files the ledger lacks and removes loaded files that are no longer live', () => {
    const live = [{ path: 'ticks/a' }, { path: 'ticks/c', sha256: 'x' }];
    expect(diffLiveFiles(live, new Set(['ticks/b', 'ticks/a']))).toEqual({
      add: [{ path: 'ticks/c', sha256: 'x' }],
      remove: ['ticks/b'],
    });
    expect(diffLiveFiles(live, new Set(['ticks/a', 'ticks/c']))).toEqual({ add: [], remove: [] });
  });
});
