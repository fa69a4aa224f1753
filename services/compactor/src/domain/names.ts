import { randomBytes } from 'node:crypto';

/** A fresh op id: sortable by time, unique without coordination. */
export function newOpId(now: Date = new Date()): string {
  return `${now.getTime().toString(36)}-${randomBytes(4).toString('hex')}`;
}

/** Every attempt of an op commits under `<op>-<op-id>.<attempt nonce>`; this prefix finds any of them. */
export function commitPrefix(op: string, opId: string): string {
  return `${op}-${opId}.`;
}

export function attemptCommitId(op: string, opId: string, nonce: string): string {
  return `${commitPrefix(op, opId)}${nonce}`;
}

export function newNonce(): string {
  return randomBytes(3).toString('hex');
}

function stamp(now: Date): string {
  const iso = now.toISOString();
  return `${iso.slice(0, 10).replaceAll('-', '')}_${iso.slice(11, 19).replaceAll(':', '')}`;
}

/**
 * Output file name: `<op>_<YYYYMMDD>_<HHMMSS>_<op-id>_<nonce>_<n>.parquet`. The attempt nonce
 * keeps a retry from overwriting what a crashed attempt left (an orphan vacuum will sweep).
 */
export function outputFileName(op: string, opId: string, nonce: string, n: number, now: Date): string {
  return `${op}_${stamp(now)}_${opId}_${nonce}_${String(n).padStart(4, '0')}.parquet`;
}

/** Where a replaced file is copied when the op asks for a backup. */
export function backupKey(opId: string, path: string): string {
  return `_backups/${opId}/${path}`;
}

export function backupManifestKey(opId: string): string {
  return `_backups/${opId}/_operation.json`;
}

/** Core NATS subject (no stream captures it) where a job's result is published. */
export function resultSubject(op: string, opId: string): string {
  return `lake.results.${op}.${opId}`;
}
