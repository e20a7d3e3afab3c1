/**
 * Configuration values with units (docs/operator-guide.md, "The configuration file"): sizes and rates as
 * `"10 MB"`, `"1.5 GiB"`, `"100 Mbit/s"`, durations as `"90 s"`, `"5 min"`, `"3 h"`, `"7 days"`. A bare number
 * still means bytes (or bytes per second) and milliseconds.
 *
 *   size      = number [space] unit ["/s"]     unit: B | KB | MB | GB | TB (powers of 1000)
 *                                                    KiB | MiB | GiB | TiB (powers of 1024)
 *                                                    kbit | Mbit | Gbit (powers of 1000 bits: a rate in bits)
 *   duration  = number [space] unit            unit: ms | s | min | h | d | day(s) | w | week(s)
 *
 * A value must come out a whole number of bytes or milliseconds. Unit names are case-sensitive where case carries
 * meaning (MB is not Mb); the spelled-out ones are not.
 */
import { z } from 'zod';

const SIZE_UNITS: Record<string, number> = {
  B: 1,
  KB: 1e3,
  kB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
  TiB: 1024 ** 4,
  kbit: 1e3 / 8,
  Mbit: 1e6 / 8,
  Gbit: 1e9 / 8,
};

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  sec: 1000,
  second: 1000,
  seconds: 1000,
  min: 60_000,
  minute: 60_000,
  minutes: 60_000,
  h: 3_600_000,
  hour: 3_600_000,
  hours: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
  days: 86_400_000,
  w: 604_800_000,
  week: 604_800_000,
  weeks: 604_800_000,
};

const SIZE_HELP = 'a number of bytes, or a number and a unit: B, KB, MB, GB, TB (×1000), KiB, MiB, GiB, TiB (×1024), kbit, Mbit, Gbit; like "10 MB"';
const DURATION_HELP = 'a number of milliseconds, or a number and a unit: ms, s, min, h, d, w; like "5 min"';

/** Bytes (or bytes per second) of a size like "10 MB" or "100 Mbit/s"; null when it is not one. */
export function parseSize(text: string, rate = false): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)(\/s)?\s*$/.exec(text) ?? /^\s*(\d+)\s*$/.exec(text);
  if (!m) return null;
  if (m[3] && !rate) return null;
  const unit = m[2] === undefined ? 1 : SIZE_UNITS[m[2]];
  if (unit === undefined) return null;
  const v = Number(m[1]) * unit;
  return Number.isSafeInteger(Math.round(v)) && Math.abs(v - Math.round(v)) < 1e-6 ? Math.round(v) : null;
}

/** Milliseconds of a duration like "5 min"; null when it is not one. */
export function parseDuration(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)?\s*$/.exec(text);
  if (!m) return null;
  const unit = m[2] === undefined ? 1 : DURATION_UNITS[m[2].length > 3 ? m[2].toLowerCase() : m[2]];
  if (unit === undefined) return null;
  const v = Number(m[1]) * unit;
  return Number.isSafeInteger(Math.round(v)) && Math.abs(v - Math.round(v)) < 1e-6 ? Math.round(v) : null;
}

/** A schema for a size: a whole number of bytes, or a string with a unit (rate: "/s" allowed). */
export function zSize(o: { rate?: boolean; min?: number } = {}) {
  const min = o.min ?? 1;
  return z
    .union([z.number(), z.string()], { error: `expected ${SIZE_HELP}` })
    .transform((v, ctx) => {
      if (typeof v !== 'string') return v;
      const n = parseSize(v, o.rate ?? false);
      if (n === null) {
        ctx.addIssue({ code: 'custom', message: `"${v}" is not a size${o.rate ? ' per second' : ''}: ${SIZE_HELP}` });
        return z.NEVER;
      }
      return n;
    })
    .pipe(
      z
        .number()
        .int('must be a whole number of bytes')
        .min(min, min === 0 ? 'must not be negative' : 'must be at least 1 byte'),
    );
}

/** A schema for a duration: a whole number of milliseconds, or a string with a unit. */
export function zDuration() {
  return z
    .union([z.number(), z.string()], { error: `expected ${DURATION_HELP}` })
    .transform((v, ctx) => {
      if (typeof v !== 'string') return v;
      const n = parseDuration(v);
      if (n === null) {
        ctx.addIssue({ code: 'custom', message: `"${v}" is not a duration: ${DURATION_HELP}` });
        return z.NEVER;
      }
      return n;
    })
    .pipe(z.number().int('must be a whole number of milliseconds').positive('must be at least 1 ms'));
}
