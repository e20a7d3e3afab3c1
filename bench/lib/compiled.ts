/**
 * Compiled JavaScript for the processes a benchmark measures. A checkout runs `bin/allium.js` through tsx, which
 * keeps the TypeScript compiler's loader and caches in every process (about 30 MB more RSS than the same relay
 * built); an installed relay runs the tsc output (`dist/`). So benchmarks build the sources with tsc into a
 * directory outside the repository (incremental, so repeated runs are quick) and start relays and clients from it;
 * `--tsx` runs them the checkout way instead.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '..', '..');

export interface Runtime {
  readonly kind: 'compiled' | 'tsx';
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
    cli: path.join(ROOT, 'cli', 'allium.ts'),
    loaderArgs: ['--import', 'tsx'],
    module: (name) => path.join(ROOT, 'bench', 'lib', `${name}.ts`),
  };
}

/** Builds the runtime sources with tsc (type errors do not stop the emit) and returns how to run them. */
export async function compiledRuntime(): Promise<Runtime> {
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
  return {
    kind: 'compiled',
    cli: path.join(dist, 'cli', 'allium.js'),
    loaderArgs: [],
    module: (name) => path.join(dist, 'bench', 'lib', `${name}.js`),
  };
}
