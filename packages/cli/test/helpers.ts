import { Command } from 'commander';
import { vi } from 'vitest';
import { registerCommands } from '../src/commands/index.js';
import { CliContext } from '../src/context.js';
import { reportError } from '../src/output.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON (for --json runs). */
  json<T = unknown>(): T;
}

/**
 * Runs the CLI in-process the way main.ts does (same commands, same exit codes, same error
 * report), with the environment given instead of process.env, capturing stdout and stderr.
 */
export async function runCli(argv: string[], env: Record<string, string>): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += chunk.toString();
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += chunk.toString();
    return true;
  });
  let ctx: CliContext | undefined;
  let code: number;
  try {
    const program = new Command('parquetry').exitOverride().configureOutput({
      writeOut: (s) => {
        stdout += s;
      },
      writeErr: (s) => {
        stderr += s;
      },
    });
    registerCommands(program, () => {
      ctx ??= new CliContext({ LOG_LEVEL: 'silent', ...env });
      return ctx;
    });
    try {
      await program.parseAsync(argv, { from: 'user' });
      code = 0;
    } catch (e) {
      const c = (e as { code?: string }).code;
      if (c === 'commander.helpDisplayed' || c === 'commander.help') code = 0;
      else if (typeof c === 'string' && c.startsWith('commander.')) code = 2;
      else code = reportError(e, argv.includes('--json'));
    }
  } finally {
    await ctx?.close();
    out.mockRestore();
    err.mockRestore();
  }
  return {
    code,
    stdout,
    stderr,
    json<T>() {
      return JSON.parse(stdout) as T;
    },
  };
}
