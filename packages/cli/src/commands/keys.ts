import { createKeyInFile } from '@parquetry/export-api/auth';
import { DATASETS } from '@parquetry/lake';
import { ConfigError } from '@parquetry/service';
import { type Command, Option } from 'commander';
import type { CliContext } from '../context.js';
import { emit } from '../output.js';
import type { GetContext } from './index.js';
import { commaList } from './options.js';

export interface KeysCreateOptions {
  name: string;
  datasets: string[];
  admin?: boolean;
  /** Default: API_KEYS_FILE. */
  file?: string;
}

export interface CreatedKey {
  name: string;
  /** The clear key: shown once, stored nowhere (the file keeps its SHA-256). */
  key: string;
  datasets: string[];
  admin: boolean;
  created_at: string;
  file: string;
}

/** `keys create --name N --datasets a,b [--admin]`: adds the key's hash to API_KEYS_FILE, returns the key once. */
export async function keysCreate(ctx: CliContext, opts: KeysCreateOptions): Promise<CreatedKey> {
  const file = opts.file ?? ctx.config.API_KEYS_FILE;
  if (!file) throw new ConfigError('API_KEYS_FILE is not set (or pass --file)');
  const { key, record } = await createKeyInFile({
    file,
    name: opts.name,
    datasets: opts.datasets,
    admin: opts.admin ?? false,
    knownDatasets: DATASETS.map((d) => d.name),
  });
  return {
    name: record.name,
    key,
    datasets: record.datasets,
    admin: record.admin,
    created_at: record.created_at,
    file,
  };
}

function printCreated(k: CreatedKey): void {
  process.stderr.write(
    `created key ${k.name} (${k.admin ? 'admin, ' : ''}datasets ${k.datasets.join(', ')}) in ${k.file}\n` +
      'store it now: it is not shown again\n',
  );
  process.stdout.write(`${k.key}\n`);
}

/** `parquetry keys create`: export-api keys (DESIGN.md "Security"). */
export function registerKeysCommands(program: Command, ctx: GetContext): void {
  const keys = program.command('keys').description('export-api keys');
  keys
    .command('create')
    .description('Create a key; prints it once and stores only its SHA-256 in API_KEYS_FILE')
    .requiredOption('--name <name>', 'unique name, [A-Za-z0-9_.@-]{1,64}')
    .requiredOption('--datasets <a,b>', 'datasets the key may read, or * for all', commaList)
    .option('--admin', 'may submit lake operations')
    .option('--file <path>', 'keys file (default API_KEYS_FILE)')
    .addOption(new Option('--json', 'print JSON'))
    .action(async (o: KeysCreateOptions & { json?: boolean }) => {
      emit(!!o.json, await keysCreate(ctx(), o), printCreated);
    });
}
