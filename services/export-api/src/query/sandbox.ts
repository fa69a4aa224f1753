import { sqlString } from '@parquetry/lake';

/**
 * Statements that confine a DuckDB connection to the lake and temporary directories before any
 * export query runs: no other file can be read or written, no extension installed or loaded, and
 * the configuration is locked so a later statement cannot undo it. Run them once per database
 * instance, in order, right after it opens (the engine's job). Locking also freezes per-session
 * settings, so the session time zone is set GLOBALly to UTC first (connections opened later
 * inherit it). Paths come from configuration, never from a request; they are quoted anyway.
 */
export interface SandboxOptions {
  /** Directories DuckDB may read and write (the lake root on disk, the S3 download cache, export staging). */
  allowedDirectories: readonly string[];
  /** Where DuckDB spills; must be inside one of `allowedDirectories`. */
  tempDirectory: string;
  memoryLimitMb?: number;
  threads?: number;
  /**
   * false lets DuckDB stream results without keeping their order where the query has no ORDER
   * BY, which bounds the memory of large COPYs (exports order by time whenever they limit).
   */
  preserveInsertionOrder?: boolean;
}

function asDirectory(dir: string): string {
  if (!dir.startsWith('/')) throw new Error(`sandbox directory must be absolute: ${dir}`);
  return dir.endsWith('/') ? dir : `${dir}/`;
}

export function sandboxStatements(opts: SandboxOptions): string[] {
  const dirs = opts.allowedDirectories.map(asDirectory);
  const temp = asDirectory(opts.tempDirectory);
  if (!dirs.some((d) => temp.startsWith(d)))
    throw new Error('tempDirectory must be inside allowedDirectories');
  const out = [
    `SET temp_directory = ${sqlString(temp)}`,
    `SET allowed_directories = [${dirs.map(sqlString).join(', ')}]`,
    'SET autoinstall_known_extensions = false',
    'SET autoload_known_extensions = false',
    'SET allow_community_extensions = false',
    // Lake files are immutable (a change is a new file), and candle reads open the same few files
    // on every request: keep their footers instead of re-reading them (validated by mtime).
    'SET parquet_metadata_cache = true',
  ];
  if (opts.memoryLimitMb !== undefined) out.push(`SET memory_limit = '${Math.floor(opts.memoryLimitMb)}MB'`);
  if (opts.threads !== undefined) out.push(`SET threads = ${Math.floor(opts.threads)}`);
  if (opts.preserveInsertionOrder !== undefined)
    out.push(`SET preserve_insertion_order = ${opts.preserveInsertionOrder}`);
  out.push(
    "SET GLOBAL TimeZone = 'UTC'",
    'SET enable_external_access = false',
    'SET lock_configuration = true',
  );
  return out;
}
