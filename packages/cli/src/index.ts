export { CliContext, cliConfigSchema } from './context.js';
export { printJson, printTable, progress, toJsonSafe } from './output.js';
