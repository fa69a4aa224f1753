// Public entry of @parquetry/pg-loader as a library: the CLI (`pnpm parquetry load`) and the
// service both load through these.

export { createPgLoader, type PgLoader, type PgLoaderDeps, parseLakeEvent } from './app.js';
export {
  DEFAULT_DATABASE_URL,
  type LoadConfig,
  type LoadConfigInput,
  loadConfigSchema,
  type PgLoaderEnv,
  parseConfigText,
  parseLoadConfig,
  pgLoaderEnvSchema,
  readLoadConfig,
} from './config.js';
export { DatasetFollower, type FollowerDeps, type SyncSummary } from './follower.js';
export {
  type ApplyOptions,
  applyLakeChange,
  type ChangeDecider,
  diffLiveFiles,
  LAKE_FILE_COLUMN,
  type LakeChange,
  type LakeChangeResult,
  type LakeFileRef,
  type LakeSyncDeps,
  type LocalFile,
} from './lake-sync.js';
export {
  claimFile,
  ensureLoaderTables,
  type FileLoadResult,
  forgetFiles,
  LEDGER_TABLE,
  type LoadFileOnceOptions,
  ledgerEntries,
  loadedFiles,
  loadFileOnce,
  sha256File,
} from './ledger.js';
export { type LoadResult, type RunLoadOptions, runLoad } from './load.js';
export type { FileCounts, FileTag, LoadProgress } from './pipeline.js';
export type { SchemaDiff, Strategy } from './plan.js';
export { formatLoadSummary, formatProgressLine, terminalProgress } from './progress.js';
export {
  type FollowedDataset,
  followLoadConfig,
  type PgLoaderServiceConfig,
  parseDatasetTables,
  pgLoaderServiceSchema,
} from './service-config.js';
export { SCHEMA_REGISTRY_TABLE, type TableRef } from './table.js';
