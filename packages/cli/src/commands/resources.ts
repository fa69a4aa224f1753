import { type Bus, connectBus } from '@parquetry/bus';
import {
  type Catalog,
  type DuckDB,
  type ObjectStore,
  openCatalog,
  openDuckDB,
  openObjectStore,
} from '@parquetry/lake';
import type { CliContext } from '../context.js';

/**
 * The connections commands share, each opened on first use through the context (so a command
 * that reads a local file never connects to NATS) and closed once at exit.
 */

/** Writer id of the CLI in catalog intents (its commits are single-partition; recover() is not needed). */
export const CLI_WRITER_ID = 'cli';

export function openBus(ctx: CliContext): Promise<Bus> {
  return ctx.once('resources.bus', async () => {
    const bus = await connectBus({ url: ctx.config.NATS_URL, name: 'parquetry-cli', logger: ctx.logger });
    return { value: bus, close: () => bus.close() };
  });
}

export function openLakeStore(ctx: CliContext): Promise<ObjectStore> {
  return ctx.once('resources.store', async () => {
    const store = openObjectStore(ctx.config.LAKE_URL, ctx.config);
    return { value: store, close: () => store.close() };
  });
}

export function openLakeCatalog(ctx: CliContext): Promise<Catalog> {
  return ctx.once('resources.catalog', async () => {
    const { nc } = await openBus(ctx);
    // A CLI should answer or fail within seconds, not retry for the services' 30 s.
    const catalog = await openCatalog({
      nc,
      writerId: CLI_WRITER_ID,
      logger: ctx.logger,
      retryForMs: 10_000,
    });
    return { value: catalog, close: async () => {} };
  });
}

export function openCliDuckDB(ctx: CliContext): Promise<DuckDB> {
  return ctx.once('resources.duckdb', async () => {
    const db = await openDuckDB({ threads: 2 });
    return { value: db, close: async () => db.close() };
  });
}
