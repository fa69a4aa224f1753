import { CANDLES, type ColumnType, type PartitionValues, PRODUCTS, TICKS, TIMEFRAMES } from '@parquetry/lake';
import { type DatasetCatalog, type DatasetInfo, datasetInfo } from '../datasets.js';
import { PRODUCT_PRICES_DAILY, PRODUCT_PRICES_SCHEMA } from './product-prices.js';

/**
 * The datasets export-api serves and where each one's rows come from:
 * - `products`, `ticks`, `candles`: the lake datasets, files from the catalog (products with
 *   the free-form columns discovered in live files; candles with the highest revision only);
 * - `candles_<tf>`: the candles of one timeframe (partitions `timeframe=<tf>` only);
 * - `product_prices_daily`: prices per retailer, category and day, aggregated from products
 *   (lake/product-prices.ts).
 */
export type DatasetSource =
  | {
      kind: 'files';
      /** Lake dataset whose catalog lists the files. */
      dataset: string;
      /** Partition values every file must have (a timeframe for `candles_<tf>`). */
      fixed?: PartitionValues;
      /** Keep the highest revision of each candle. */
      latestRevision?: boolean;
    }
  | { kind: 'product_prices_daily' };

export interface LakeDataset {
  info: DatasetInfo;
  source: DatasetSource;
}

export interface LakeDatasetsDeps {
  /** Free-form product columns (ProductSchemaDiscovery); none when absent. */
  productColumns?: () => Promise<Record<string, ColumnType>>;
}

export class LakeDatasets implements DatasetCatalog {
  constructor(private readonly deps: LakeDatasetsDeps = {}) {}

  async entries(): Promise<LakeDataset[]> {
    const extra = this.deps.productColumns ? await this.deps.productColumns() : {};
    const candleTimeframes: LakeDataset[] = TIMEFRAMES.map((tf) => ({
      info: {
        ...datasetInfo(CANDLES),
        name: `candles_${tf}`,
        description: `${tf} OHLCV candles (the highest revision of each)`,
        partition_columns: CANDLES.partitionColumns.filter((c) => c !== 'timeframe'),
        derived_from: CANDLES.name,
      },
      source: { kind: 'files', dataset: CANDLES.name, fixed: { timeframe: tf }, latestRevision: true },
    }));
    return [
      { info: datasetInfo(PRODUCTS, extra), source: { kind: 'files', dataset: PRODUCTS.name } },
      { info: datasetInfo(TICKS), source: { kind: 'files', dataset: TICKS.name } },
      {
        info: {
          ...datasetInfo(CANDLES),
          description: 'OHLCV candles 1m to 1d (the highest revision of each)',
        },
        source: { kind: 'files', dataset: CANDLES.name, latestRevision: true },
      },
      ...candleTimeframes,
      {
        info: {
          name: PRODUCT_PRICES_DAILY,
          description:
            'Per retailer, category and day: product count, products with a usable price, min/avg/max price',
          partition_columns: ['retailer', 'date'],
          schema: { ...PRODUCT_PRICES_SCHEMA },
          columns: Object.keys(PRODUCT_PRICES_SCHEMA),
          time_column: 'date',
          derived_from: PRODUCTS.name,
        },
        source: { kind: 'product_prices_daily' },
      },
    ];
  }

  async list(): Promise<DatasetInfo[]> {
    return (await this.entries()).map((e) => e.info);
  }

  async get(name: string): Promise<LakeDataset | undefined> {
    return (await this.entries()).find((e) => e.info.name === name);
  }
}
