#!/usr/bin/env node
import { Command } from 'commander';
import { registerCommands } from './commands/index.js';
import { CliContext } from './context.js';
import { reportError } from './output.js';

/** `pnpm parquetry …`: every command has --help and --json (docs/DESIGN.md "Operator CLI"). */
export async function run(argv: string[]): Promise<number> {
  let ctx: CliContext | undefined;
  const getContext = () => {
    ctx ??= new CliContext();
    return ctx;
  };
  const program = new Command('parquetry')
    .description('Operate the Parquetry lake, candles, dead letters, loads and keys')
    .showHelpAfterError()
    .exitOverride();
  registerCommands(program, getContext);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'commander.helpDisplayed' || code === 'commander.version' || code === 'commander.help')
      return 0;
    if (typeof code === 'string' && code.startsWith('commander.')) return 2;
    return reportError(err, argv.includes('--json'));
  } finally {
    await ctx?.close();
  }
}

run(process.argv.slice(2)).then((code) => {
  // A command may set a failing exit code itself after printing its result (candles verify).
  process.exitCode = code !== 0 ? code : (process.exitCode ?? 0);
});
