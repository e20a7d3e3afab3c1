/**
 * Compiled JavaScript for the processes a benchmark measures. A checkout runs `bin/allium.js` through tsx, which
 * keeps the TypeScript compiler's loader and caches in every process (about 30 MB more RSS than the same relay
 * built); an installed relay runs `bin/allium.js`, which runs the command line's bundle (`dist/bundle/`, built by
 * scripts/build-node.ts) beside the tsc output of the same build (`dist/cli/`). So benchmarks build the sources with
 * tsc into a directory outside the repository (incremental, so repeated runs are quick), bundle the command line
 * there too, and start relays as an installed package does: that directory's own copy of bin/allium.js, running the
 * bundle. Clients and the bench's helper processes (bench/lib/*-main) run from the tsc output.
 * `--modules` starts relays from the tsc output instead (dist/cli/allium.js: what a relay ran before the bundle, for
 * comparison), and `--tsx` runs everything the checkout way.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { buildNodeBundle } from '../../scripts/build-node.js';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '..', '..');

/** How relay processes run: as installed (bin/allium.js → the bundle), from the tsc output, or through tsx. */
export type RelayRuntime = 'bundle' | 'modules' | 'tsx';

export interface Runtime {
  readonly kind: 'compiled' | 'tsx';
  /** What the relay processes run (`cli`). */
  readonly relays: RelayRuntime;
  /** `relays` in words, for a report's header. */
  readonly label: string;
  /** Script taking the `allium` command line. */
  readonly cli: string;
  /** Node flags every process of this runtime needs before its script (the tsx loader, or nothing). */
  readonly loaderArgs: readonly string[];
  /** Path of a bench/lib module in this runtime (`client-main` → …/bench/lib/client-main.js or .ts). */
  module(name: string): string;
}

/** The sources through tsx (what bin/allium.js runs in a checkout without dist/). */
export function tsxRuntime(): Runtime {
  return {
    kind: 'tsx',
    relays: 'tsx',
    label: 'through tsx',
    cli: path.join(ROOT, 'cli', 'allium.ts'),
    loaderArgs: ['--import', 'tsx'],
    module: (name) => path.join(ROOT, 'bench', 'lib', `${name}.ts`),
  };
}

/** The runtime a bench's `--tsx` / `--modules` flags ask for (default: relays from the bundle). */
export async function benchRuntime(flags: { tsx?: boolean | undefined; modules?: boolean | undefined }, progress?: (s: string) => void): Promise<Runtime> {
  if (flags.tsx) return tsxRuntime();
  const relays = flags.modules ? 'modules' : 'bundle';
  progress?.(relays === 'bundle' ? 'building relays and client with tsc, and the relay bundle' : 'building relays and client with tsc');
  return compiledRuntime(relays);
}

/**
 * Builds the runtime sources with tsc (type errors do not stop the emit) and, for `relays` = 'bundle', the command
 * line's bundle beside them, and returns how to run them.
 */
export async function compiledRuntime(relays: 'bundle' | 'modules' = 'bundle'): Promise<Runtime> {
  // One build directory per checkout, so two checkouts can be compared side by side.
  const out = path.join(os.tmpdir(), `allium-bench-build-${createHash('sha256').update(ROOT).digest('hex').slice(0, 8)}`);
  mkdirSync(out, { recursive: true });
  // Node resolves packages by walking up from the script: give the build the checkout's node_modules.
  const nm = path.join(out, 'node_modules');
  if (!existsSync(nm)) symlinkSync(path.join(ROOT, 'node_modules'), nm, 'dir');
  writeFileSync(path.join(out, 'package.json'), JSON.stringify({ type: 'module', private: true }));
  const tsconfig = path.join(out, 'tsconfig.json');
  writeFileSync(
    tsconfig,
    JSON.stringify({
      extends: path.join(ROOT, 'tsconfig.json'),
      compilerOptions: {
        rootDir: ROOT,
        outDir: path.join(out, 'dist'),
        declaration: false,
        sourceMap: false,
        incremental: true,
        tsBuildInfoFile: path.join(out, 'tsbuildinfo'),
        noEmit: false,
      },
      include: ['crypto', 'protocol', 'net', 'relay', 'client', 'cli'].map((d) => path.join(ROOT, d)).concat(path.join(ROOT, 'bench', 'lib')),
    }),
  );
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  try {
    await run(process.execPath, [tsc, '-p', tsconfig], { maxBuffer: 16 << 20 });
  } catch (e) {
    // tsc exits non-zero on type errors but still emits; only a missing output is fatal.
    if (!existsSync(path.join(out, 'dist', 'cli', 'allium.js'))) throw e;
  }
  const dist = path.join(out, 'dist');
  let cli = path.join(dist, 'cli', 'allium.js');
  let label = 'tsc output (dist/cli/allium.js)';
  if (relays === 'bundle') {
    // As installed: bin/allium.js beside dist/, which runs dist/bundle/allium.js when it is as new as dist/cli/ (it
    // is: built after tsc). The bundle's packages resolve through the node_modules link above.
    const started = performance.now();
    await buildNodeBundle(path.join(dist, 'bundle'));
    mkdirSync(path.join(out, 'bin'), { recursive: true });
    cli = path.join(out, 'bin', 'allium.js');
    copyFileSync(path.join(ROOT, 'bin', 'allium.js'), cli);
    label = `bin/allium.js running the bundle (dist/bundle/, built in ${((performance.now() - started) / 1000).toFixed(1)} s), as installed`;
  }
  return {
    kind: 'compiled',
    relays,
    label,
    cli,
    loaderArgs: [],
    module: (name) => path.join(dist, 'bench', 'lib', `${name}.js`),
  };
}
