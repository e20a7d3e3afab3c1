/**
 * "Did you mean" for unknown configuration keys (relay and client config files): the known key closest by edit
 * distance, and the TOML table mistakes that look like unknown keys — a top-level key written after `[timing]`
 * (TOML puts it in that table) or a timing key written at the top level.
 */

/** Edit distance (insertions, deletions, substitutions, and swaps of neighbours), for short key names. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest of `known` to `key`, when close enough to be a typo (about a third of its letters at most). */
export function closestKey(key: string, known: readonly string[]): string | null {
  let best: string | null = null;
  let bestD = Infinity;
  const k = key.toLowerCase().replace(/-/g, '_');
  for (const c of known) {
    const dist = editDistance(k, c);
    if (dist < bestD) [best, bestD] = [c, dist];
  }
  return best !== null && bestD <= Math.max(1, Math.floor(key.length / 3)) ? best : null;
}

/**
 * The hint for an unknown key at `path` (e.g. ["timing"], "gosip_interval"), given the top-level keys and the keys
 * of each table; "" when nothing is close.
 */
export function unknownKeyHint(path: readonly string[], key: string, top: readonly string[], tables: Readonly<Record<string, readonly string[]>>): string {
  const table = path.length ? path.join('.') : null;
  const here = table ? (tables[table] ?? []) : top;
  const near = closestKey(key, here);
  if (near) return `did you mean "${table ? `${table}.` : ''}${near}"?`;
  if (table && top.includes(key)) return `"${key}" is a top-level key: move it above the [${table}] table (TOML puts every key after [${table}] into it)`;
  if (!table) {
    for (const [t, keys] of Object.entries(tables)) {
      const inTable = keys.includes(key) ? key : closestKey(key, keys);
      if (inTable) return `did you mean "${t}.${inTable}" (in the [${t}] table)?`;
    }
  }
  return '';
}
