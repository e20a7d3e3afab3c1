/**
 * Builds the browser bundle: client/browser.ts → dist/browser/allium.js, one minified ES module with a source map
 * (`npm run build:browser`; `npm run build` runs it after tsc).
 *
 * What keeps Node out of the bundle:
 * - crypto/binding-native.ts (sodium-native, loaded on demand by crypto/index.ts) is replaced by a module whose
 *   loader finds nothing, so `initCrypto()` takes libsodium-wrappers-sumo (WebAssembly), as it would in Node
 *   without sodium-native;
 * - nothing the entry imports uses `node:net`: hidden TCP services reach their local service through a connector the
 *   Node entry injects (client/messaging/tcp-connector.ts); in a page without one, a stream to a hidden service is
 *   refused like one to a service that is down (test/architecture/imports.test.ts keeps node:* out of this graph);
 * - libsodium's own `require("crypto")`, its fallback where WebCrypto is missing, gets an empty module;
 * - zod's error messages in 40-odd languages (`z.locales`, which Allium never uses; a quarter of the bundle) are cut
 *   down to English, the one zod configures by default;
 * - any other Node built-in fails the build (esbuild's browser platform refuses them), naming the importer.
 *
 *   tsx scripts/build-browser.ts [--outdir DIR]
 */
import { build, type Metafile, type Plugin } from 'esbuild';
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';

const ROOT = resolve(import.meta.dirname, '..');
export const BROWSER_ENTRY = join(ROOT, 'client', 'browser.ts');
export const BROWSER_OUTDIR = join(ROOT, 'dist', 'browser');
const STUB = 'allium-browser-stub';

/** Modules replaced in the browser, by the import specifier and the importer's folder (crypto/ for the binding). */
const STUBS: Record<string, { contents: string; resolveDir: string }> = {
  'native-binding': {
    resolveDir: join(ROOT, 'crypto'),
    contents: '/** sodium-native does not exist in browsers. */\nexport function loadNativeBinding() { return null; }\n',
  },
  'empty-crypto': { resolveDir: ROOT, contents: 'export default {};\n' },
  // resolveDir: zod's own locales folder, taken from the importer
  'zod-locales': { resolveDir: '', contents: "export { default as en } from './en.js';\n" },
};

const browserStubs: Plugin = {
  name: 'allium-browser-stubs',
  setup(b) {
    b.onResolve({ filter: /^\.\/binding-native\.js$/ }, (args) =>
      resolve(args.resolveDir) === join(ROOT, 'crypto') ? { path: 'native-binding', namespace: STUB } : undefined,
    );
    b.onResolve({ filter: /^crypto$/ }, (args) =>
      /[\\/]node_modules[\\/]libsodium-sumo[\\/]/.test(args.importer) ? { path: 'empty-crypto', namespace: STUB } : undefined,
    );
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      /[\\/]node_modules[\\/]zod[\\/]v4[\\/]/.test(args.importer)
        ? { path: 'zod-locales', namespace: STUB, pluginData: join(args.resolveDir, '..', 'locales') }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: STUB }, (args) => {
      const stub = STUBS[args.path]!;
      return { contents: stub.contents, resolveDir: (args.pluginData as string | undefined) ?? stub.resolveDir, loader: 'ts' };
    });
  },
};

export interface BrowserBuild {
  /** The bundle's path. */
  file: string;
  bytes: number;
  /** esbuild's record of every input and output (the tests check which modules went in). */
  metafile: Metafile;
}

/** Bundles client/browser.ts into `outdir`/allium.js (and allium.js.map). */
export async function buildBrowserBundle(outdir = BROWSER_OUTDIR): Promise<BrowserBuild> {
  mkdirSync(outdir, { recursive: true });
  const outfile = join(outdir, 'allium.js');
  const result = await build({
    entryPoints: [BROWSER_ENTRY],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022'],
    minify: true,
    sourcemap: true,
    sourcesContent: true,
    legalComments: 'eof',
    metafile: true,
    logLevel: 'warning',
    absWorkingDir: ROOT,
    plugins: [browserStubs],
  });
  const out =
    result.metafile.outputs[join('dist', 'browser', 'allium.js')] ?? Object.entries(result.metafile.outputs).find(([k]) => k.endsWith('allium.js'))?.[1];
  return { file: outfile, bytes: out?.bytes ?? 0, metafile: result.metafile };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const i = process.argv.indexOf('--outdir');
  const outdir = i > 0 && process.argv[i + 1] ? resolve(process.argv[i + 1]!) : BROWSER_OUTDIR;
  const { file, bytes } = await buildBrowserBundle(outdir);
  const gz = gzipSync(readFileSync(file), { level: 9 }).length;
  console.log(`${file}: ${(bytes / 1024).toFixed(0)} KiB, ${(gz / 1024).toFixed(0)} KiB gzipped`);
}
