/**
 * Log lines a person reads in a terminal: pino's JSON line turned into
 *
 *     05:41:07 INFO  relay running  relay=4cc2cda5 address=ws://127.0.0.1:9001/allium
 *
 * (the level coloured when `color`). Fields other than time, level, msg, pid, name and hostname follow as key=value;
 * an error field shows its code and message. What is logged is exactly what the JSON line holds, so the safe-logging
 * rules (relay/logger.ts) are the same in both forms.
 */

const LEVELS: Record<number, { name: string; color: string }> = {
  10: { name: 'TRACE', color: '\x1b[90m' },
  20: { name: 'DEBUG', color: '\x1b[36m' },
  30: { name: 'INFO ', color: '\x1b[32m' },
  40: { name: 'WARN ', color: '\x1b[33m' },
  50: { name: 'ERROR', color: '\x1b[31m' },
  60: { name: 'FATAL', color: '\x1b[35m' },
};
const RESET = '\x1b[0m';
const SKIP = new Set(['time', 'level', 'msg', 'pid', 'name', 'hostname', 'v']);

function value(v: unknown): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) || v === '' ? JSON.stringify(v) : v;
  if (v && typeof v === 'object') {
    const e = v as { code?: unknown; message?: unknown; type?: unknown };
    if (typeof e.message === 'string') return JSON.stringify(`${typeof e.code === 'string' ? `${e.code}: ` : ''}${e.message}`);
    return JSON.stringify(v);
  }
  return String(v);
}

/** One JSON log line as a readable line (with its newline). Lines that are not JSON objects pass through. */
export function formatLogLine(json: string, color: boolean): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  const lv = LEVELS[Number(o['level'])] ?? { name: String(o['level']).toUpperCase().padEnd(5), color: '' };
  const t = typeof o['time'] === 'string' ? (o['time'] as string) : new Date(Number(o['time'] ?? Date.now())).toISOString();
  const clock = t.length >= 19 ? t.slice(11, 19) : t;
  const level = color && lv.color ? `${lv.color}${lv.name}${RESET}` : lv.name;
  const fields = Object.entries(o)
    .filter(([k]) => !SKIP.has(k))
    .map(([k, v]) => `${k}=${value(v)}`)
    .join(' ');
  return `${clock} ${level} ${String(o['msg'] ?? '')}${fields ? `  ${fields}` : ''}\n`;
}

/** Whether logs should be pretty: "pretty", "json", or "auto" (pretty when the destination is a terminal). */
export function wantsPretty(format: 'auto' | 'json' | 'pretty', isTTY: boolean): boolean {
  return format === 'pretty' || (format === 'auto' && isTTY);
}
