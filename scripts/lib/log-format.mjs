// Children's output as start.mjs shows it: every line prefixed with the process name; pino JSON
// lines shortened to `time level msg key=value…` (LOG_FORMAT=json keeps them as they are).
const LEVELS = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };
const COLORS = { warn: 33, error: 31, fatal: 31 };
const OMIT = new Set(['level', 'time', 'msg', 'service', 'pid', 'hostname']);

function value(v) {
  if (typeof v === 'string') return /[\s"=]/.test(v) ? JSON.stringify(v) : v;
  const s = JSON.stringify(v);
  return s !== undefined && s.length > 200 ? `${s.slice(0, 200)}…` : s;
}

/** One output line of `name`, formatted for a terminal. */
export function formatLine(name, line, { width = 18, json = false, color = false } = {}) {
  const prefix = `${name.padEnd(width)}| `;
  if (json || !line.startsWith('{')) return prefix + line;
  let rec;
  try {
    rec = JSON.parse(line);
  } catch {
    return prefix + line;
  }
  if (typeof rec !== 'object' || rec === null || rec.msg === undefined) return prefix + line;
  const level = LEVELS[rec.level] ?? String(rec.level ?? '');
  const time =
    typeof rec.time === 'string'
      ? rec.time.slice(11, 19)
      : new Date(rec.time ?? Date.now()).toISOString().slice(11, 19);
  const fields = Object.entries(rec)
    .filter(([k]) => !OMIT.has(k))
    .map(([k, v]) =>
      k === 'err' && v && typeof v === 'object' ? `err=${value(v.message ?? v)}` : `${k}=${value(v)}`,
    );
  const lvl =
    color && COLORS[level] ? `\u001b[${COLORS[level]}m${level.padEnd(5)}\u001b[0m` : level.padEnd(5);
  return `${prefix}${time} ${lvl} ${rec.msg}${fields.length ? ` ${fields.join(' ')}` : ''}`;
}
