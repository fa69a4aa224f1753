// The five services as scripts/start.mjs runs them (DESIGN.md "Configuration" for the ports).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** In start order: writers first, then readers. `needs` names a dependency checked before start. */
export const SERVICES = [
  { name: 'ingest-backup', port: 9101 },
  { name: 'candle-aggregator', port: 9102 },
  { name: 'compactor', port: 9103 },
  { name: 'pg-loader', port: 9104, needs: 'postgres' },
  { name: 'export-api', port: 8080 },
];

/**
 * A built main that does nothing yet (`export {};` and comments only): the service is not
 * written, so start reports it instead of running a process that exits at once.
 */
export function isStubMain(text) {
  const code = text
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/^\s*\/\/.*$/gm, '')
    .replace(/\s+/g, '');
  return code === '' || code === 'export{};';
}

/** `ok` (runnable), `missing` (no dist/main.js: not built) or `stub`. */
export function serviceState(root, name) {
  const main = join(root, 'services', name, 'dist', 'main.js');
  if (!existsSync(main)) return { state: 'missing', main };
  return { state: isStubMain(readFileSync(main, 'utf8')) ? 'stub' : 'ok', main };
}
