import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { registerCandlesCommands } from './candles.js';
import { registerDlqCommands } from './dlq.js';
import { registerKeysCommands } from './keys.js';
import { registerLakeCommands } from './lake/index.js';
import { registerLoadCommand } from './load.js';
import { registerOpsCommands } from './ops.js';
import { registerQueryCommand } from './query.js';

export type GetContext = () => CliContext;

/** Each command group registers itself here. */
export function registerCommands(program: Command, ctx: GetContext): void {
  registerLakeCommands(program, ctx);
  registerDlqCommands(program, ctx);
  registerKeysCommands(program, ctx);
  registerLoadCommand(program, ctx);
  registerQueryCommand(program, ctx);
  registerCandlesCommands(program, ctx);
  registerOpsCommands(program, ctx);
}
