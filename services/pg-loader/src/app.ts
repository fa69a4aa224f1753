import type { DuckDBInstance } from '@duckdb/node-api';
import {
  type Bus,
  type BusMessage,
  type ConsumerLoop,
  ensureConsumer,
  ensureStreams,
  runConsumer,
  STREAM_DEFS,
  STREAM_NAMES,
  subjects,
} from '@parquetry/bus';
import { type Catalog, lakeCommitted, type ObjectStore, openCatalog } from '@parquetry/lake';
import { InvalidInputError, type Logger, type Metrics } from '@parquetry/service';
import type pg from 'pg';
import { DatasetFollower } from './follower.js';
import { ensureLoaderTables } from './ledger.js';
import { followLoadConfig, type PgLoaderServiceConfig } from './service-config.js';

export interface PgLoaderDeps {
  config: PgLoaderServiceConfig;
  bus: Bus;
  store: ObjectStore;
  duckdb: DuckDBInstance;
  pool: pg.Pool;
  logger: Logger;
  metrics: Metrics;
}

export interface PgLoader {
  catalog: Catalog;
  followers: DatasetFollower[];
  /** Reconcile every followed table with the catalog now. */
  reconcileAll(): Promise<void>;
  /** The reconcile started with the service (it runs while events are already followed). */
  initialReconcile: Promise<void>;
  /** Stop consuming and reconciling; in-flight work finishes (or rolls back) first. */
  stop(): Promise<void>;
  ready(): boolean;
}

const SERVICE = 'pg-loader';

/** The event as the zod schema has it; anything else can never load. */
export function parseLakeEvent(msg: BusMessage) {
  const parsed = lakeCommitted.safeParse(msg.json());
  if (!parsed.success) {
    throw new InvalidInputError(`not a lake.committed event: ${parsed.error.issues[0]?.message ?? ''}`, {
      code: 'invalid_event',
      cause: parsed.error,
    });
  }
  return parsed.data;
}

/**
 * Wires pg-loader: for each followed dataset a table, a durable consumer on
 * `lake.committed.<dataset>` whose events are applied one at a time (each acked only after its
 * transaction committed), and a reconcile with the catalog at start and every
 * PG_LOADER_RECONCILE_MS.
 */
export async function createPgLoader(deps: PgLoaderDeps): Promise<PgLoader> {
  const { config, bus, store, duckdb, pool, logger, metrics } = deps;
  await ensureStreams(bus.jsm, STREAM_DEFS, { replicas: config.STREAM_REPLICAS });
  const catalog = await openCatalog({
    nc: bus.nc,
    writerId: SERVICE,
    logger,
    metrics,
    replicas: config.STREAM_REPLICAS,
  });
  {
    const client = await pool.connect();
    try {
      await ensureLoaderTables(client);
    } finally {
      client.release();
    }
  }
  const followers = config.datasets.map(
    ({ dataset, table }) =>
      new DatasetFollower({
        dataset,
        table,
        config: followLoadConfig(config, table),
        pool,
        catalog,
        store,
        duckdb,
        logger: logger.child({ dataset }),
        metrics,
      }),
  );
  let stopped = false;
  let healthy = true;
  const reconcileOne = async (f: DatasetFollower) => {
    try {
      await f.reconcile();
      healthy = true;
    } catch (err) {
      healthy = false;
      logger.warn({ err, dataset: f.dataset }, 'reconcile_failed');
    }
  };
  // One round at a time: a timer tick during a long round (a first load of the lake) waits for it.
  let round: Promise<void> | undefined;
  const reconcileAll = () => {
    round ??= (async () => {
      for (const f of followers) if (!stopped) await reconcileOne(f);
    })().finally(() => {
      round = undefined;
    });
    return round;
  };

  const loops: ConsumerLoop[] = [];
  for (const f of followers) {
    const durable = `${SERVICE}-${f.dataset}`;
    await ensureConsumer(bus.jsm, STREAM_NAMES.lake, durable, {
      filterSubjects: [subjects.lakeCommitted(f.dataset)],
      ackWaitMs: config.PG_LOADER_ACK_WAIT_MS,
      maxAckPending: 100,
      description: `${SERVICE} → ${f.table.schema}.${f.table.name}`,
    });
    loops.push(
      await runConsumer({
        js: bus.js,
        nc: bus.nc,
        stream: STREAM_NAMES.lake,
        durable,
        dlqService: SERVICE,
        logger: logger.child({ dataset: f.dataset }),
        metrics,
        batchSize: 10,
        maxDeliver: config.MAX_DELIVER,
        // A long COPY keeps its event from being redelivered to another instance meanwhile.
        inProgressEveryMs: Math.max(500, Math.floor(config.PG_LOADER_ACK_WAIT_MS / 3)),
        handler: async (batch) => {
          for (const msg of batch) {
            try {
              await f.handle(parseLakeEvent(msg));
              healthy = true;
              await msg.ack();
            } catch (err) {
              if (!(err instanceof InvalidInputError)) healthy = false;
              await msg.fail(err);
            }
          }
        },
      }),
    );
  }

  // Loads whatever the tables lack (a first start loads the whole lake); events queue behind it
  // per table, so the service answers probes and follows the bus meanwhile.
  const initialReconcile = reconcileAll();
  const timer = setInterval(() => {
    void reconcileAll();
  }, config.PG_LOADER_RECONCILE_MS);
  timer.unref();

  return {
    catalog,
    followers,
    reconcileAll,
    initialReconcile,
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      await Promise.all(loops.map((l) => l.stop()));
      // A reconcile still loading rolls back when main closes the pool; give it a moment first.
      await Promise.race([round, new Promise((r) => setTimeout(r, 30_000).unref())]);
    },
    ready: () => !stopped && healthy && bus.isConnected() && loops.every((l) => l.isRunning()),
  };
}
