import type { Filter } from '@parquetry/lake';
import type { Logger } from 'pino';

/**
 * The audit trail: one `audit` line per export (who, what, how much) and one per refused
 * dataset access. Lines carry `audit: true` so a log pipeline can route them apart; filters are
 * logged as sent (they are the record of what was asked), keys never (the logger redacts them).
 */
export interface ExportAuditEntry {
  key_name: string;
  export_id: string;
  dataset: string;
  format: string;
  compression: string;
  columns: readonly string[] | null;
  filters: readonly Filter[];
  /** The key's own row scope, applied on top of `filters`. */
  row_scoped: boolean;
  date_range: { start: string; end: string } | null;
  limit: number | null;
  partition_by: readonly string[];
  status: 'succeeded' | 'failed';
  rows: number | null;
  bytes: number | null;
  duration_ms: number;
  error_code?: string;
}

export interface DeniedAuditEntry {
  key_name: string;
  dataset: string;
  reason: string;
}

export interface AuditLog {
  export(entry: ExportAuditEntry): void;
  denied(entry: DeniedAuditEntry): void;
}

export function createAuditLog(logger: Logger): AuditLog {
  const log = logger.child({ audit: true });
  return {
    export: (entry) => log.info({ event: 'export', ...entry }, 'audit'),
    denied: (entry) => log.warn({ event: 'denied', ...entry }, 'audit'),
  };
}
