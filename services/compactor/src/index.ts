/** The compactor's public entry: the operations the service runs, for the CLI to run the same code. */

export { resultSubject } from './domain/names.js';
export type { OpResult, OpTotals, PartitionReport } from './domain/report.js';
export type { OpContext } from './engine/context.js';
export { CRASH_POINTS, type CrashPoint } from './engine/crash.js';
export { type OpEnvironment, type OpEnvironmentOptions, openOpEnvironment } from './engine/open.js';
export {
  type CleanupOpResult,
  type JobResult,
  runOperation,
  type VacuumOpResult,
} from './engine/run.js';
export {
  COMPACTOR_OPS,
  type CompactorOp,
  isCompactorOp,
  JOB_SCHEMAS,
  type JobInput,
  parseJob,
} from './jobs.js';
