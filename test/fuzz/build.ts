/**
 * The instrumented build the fuzzer runs: test/fuzz/worker.ts bundled by esbuild into one ES module, with every source
 * file of crypto/, protocol/, net/, relay/ and client/ instrumented by istanbul (statement, function and branch
 * counters: the engine's coverage signal). Packages stay outside the bundle and load from node_modules. Each
 * project file keeps its own import.meta, so paths relative to a source file still resolve.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';
import { createInstrumenter } from 'istanbul-lib-instrument';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
const INSTRUMENTED = /^(crypto|protocol|net|relay|client)\//;

export const BUILD_DIR = join(ROOT, 'node_modules/.cache/allium-fuzz');
export const WORKER_BUNDLE = join(BUILD_DIR, 'worker.mjs');

/** Builds the instrumented worker; returns the number of instrumented files. */
export async function buildFuzzWorker(): Promise<number> {
  const instrumenter = createInstrumenter({ esModules: true, compact: true, produceSourceMap: false, coverageVariable: '__coverage__' });
  let files = 0;
  await esbuild.build({
    entryPoints: [join(ROOT, 'test/fuzz/worker.ts')],
    outfile: WORKER_BUNDLE,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    logLevel: 'error',
    plugins: [
      {
        name: 'allium-source',
        setup(build) {
          build.onLoad({ filter: /\.ts$/ }, async (args) => {
            const rel = relative(ROOT, args.path);
            if (rel.startsWith('..') || rel.startsWith('node_modules')) return undefined;
            const source = (await readFile(args.path, 'utf8'))
              .replaceAll('import.meta.dirname', JSON.stringify(dirname(args.path)))
              .replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href));
            if (!INSTRUMENTED.test(rel)) return { contents: source, loader: 'ts' };
            const js = await esbuild.transform(source, { loader: 'ts', format: 'esm', target: 'node20', sourcefile: rel });
            files++;
            return { contents: instrumenter.instrumentSync(js.code, rel), loader: 'js', resolveDir: dirname(args.path) };
          });
        },
      },
    ],
  });
  return files;
}
