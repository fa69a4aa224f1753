import type { Compression, ExportFormat, ExportStatus } from '../api/schemas.js';
import type { ExportedFile } from './engine.js';

/** What the API remembers of an export, to answer `GET /v1/exports/:id` and to sign its links. */
export interface ExportRecord {
  export_id: string;
  /** Key name that created it: only that key can see it (anyone else gets 404). */
  owner: string;
  dataset: string;
  format: ExportFormat;
  compression: Compression;
  partition_by: string[];
  schema: Record<string, string>;
  status: ExportStatus;
  created_at: string;
  finished_at?: string;
  /** Lifetime of each signed URL handed out for it. */
  url_ttl_s: number;
  files: ExportedFile[];
  row_count?: number;
  error?: { code: string; message: string };
}

export interface ExportRecordStore {
  get(exportId: string): Promise<ExportRecord | undefined>;
  put(record: ExportRecord): Promise<void>;
}

/**
 * Records in this process's memory, the oldest dropped beyond `maxRecords`. Enough for one
 * replica; several replicas need a shared store (e.g. a JSON object per export in the lake).
 */
export class MemoryExportRecordStore implements ExportRecordStore {
  private readonly records = new Map<string, ExportRecord>();
  constructor(private readonly maxRecords = 10_000) {}

  async get(exportId: string): Promise<ExportRecord | undefined> {
    const r = this.records.get(exportId);
    return r ? structuredClone(r) : undefined;
  }

  async put(record: ExportRecord): Promise<void> {
    this.records.delete(record.export_id);
    this.records.set(record.export_id, structuredClone(record));
    while (this.records.size > this.maxRecords) {
      const oldest = this.records.keys().next().value;
      if (oldest === undefined) break;
      this.records.delete(oldest);
    }
  }
}
