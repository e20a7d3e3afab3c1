/**
 * Command-line flags for the network benchmarks: `--flag`, `--flag value` or `--flag=value`, each declared with
 * its kind; anything else prints the usage and exits 2.
 */
export type FlagKind = 'boolean' | 'number' | 'string';
export type FlagValues<S extends Record<string, FlagKind>> = {
  [K in keyof S]?: S[K] extends 'boolean' ? boolean : S[K] extends 'number' ? number : string;
};

export function parseFlags<S extends Record<string, FlagKind>>(argv: readonly string[], spec: S, usage: string): FlagValues<S> {
  const out: Record<string, boolean | number | string> = {};
  const fail = (msg: string): never => {
    console.error(`${msg}\n${usage}`);
    process.exit(2);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') {
      console.log(usage);
      process.exit(0);
    }
    if (!a.startsWith('--')) fail(`unexpected argument ${a}`);
    const eq = a.indexOf('=');
    const name = a.slice(2, eq >= 0 ? eq : undefined);
    const kind = spec[name];
    if (!kind) fail(`unknown flag --${name}`);
    if (kind === 'boolean') {
      out[name] = true;
      continue;
    }
    const v = eq >= 0 ? a.slice(eq + 1) : argv[++i];
    if (v === undefined) fail(`--${name} needs a value`);
    if (kind === 'number') {
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0) fail(`--${name} must be a non-negative number`);
      out[name] = n;
    } else out[name] = v!;
  }
  return out as FlagValues<S>;
}
