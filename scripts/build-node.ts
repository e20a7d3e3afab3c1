/**
 * Builds the command line's bundle: cli/allium.ts → dist/bundle/allium.js and the chunks it loads on demand
 * (dist/bundle/chunks/), ES modules for Node with whitespace and comments taken out (`npm run build:node`; `npm run
 * build` runs it after tsc). bin/allium.js runs it when it is there (issue 18: a relay's memory at rest).
 *
 * Why a bundle: a storeless relay started from dist/cli/ loads some 260 modules, and V8 keeps each one's source
 * string and module records for the life of the process. From the bundle it loads a few dozen files with their
 * whitespace and comments gone: a storeless relay's heap after GC is 11.5 MiB instead of 15.4, and its RSS 60 s
 * after start 60-61 MB instead of 71 (5 alternating runs of each; the commit that added this file has the table).
 *
 * What it keeps as it was:
 * - code splitting: what the entry imports with `import()` (the relay command, the devnet, the site commands, the
 *   client, sodium's WebAssembly fallback) stays in chunks of its own, loaded only by the commands that use it;
 *   one file for everything would make a relay hold the client's and the site tools' source too;
 * - cli/allium.ts still loads nothing but cli/young-generation.ts before it has capped V8's young generation;
 * - native and optional packages stay outside (sodium-native, better-sqlite3, bufferutil, utf-8-validate), found by
 *   the `createRequire(import.meta.url)` that loads them, from dist/bundle/ as from dist/crypto/: the package's own
 *   node_modules or the one it is installed in; libsodium-wrappers-sumo too (the fallback when sodium-native does not
 *   load: 0.5 MB of JavaScript a relay with sodium-native never reads);
 * - zod's error messages in 40-odd languages (`z.locales`, never used) are cut down to English, as in the browser
 *   bundle (scripts/build-browser.ts);
 * - CommonJS packages bundled into an ES module call `require` for Node's built-ins: each output file gets one made
 *   by `createRequire`.
 * - chunks keep esbuild's content hash in their names (`chunks/relay-command-ZK3N….js`): the hash covers a chunk's
 *   bytes and those of the chunks it imports, so a chunk's name means one content and two builds' files can never
 *   be taken for one another. What the names cannot prevent is an incomplete directory: an in-place upgrade or a
 *   copy that stopped part way (or that copied allium.js without chunks/) leaves an entry whose chunks are missing
 *   or cut short, and a chunk loaded by `import()` is only looked for when a command first needs it — the devnet,
 *   the site commands, a relay with an admin endpoint, sodium's fallback on a machine where sodium-native does not
 *   load — so such an install worked for some commands and failed later in others with ERR_MODULE_NOT_FOUND naming
 *   a hashed file. So the entry carries the name and size of every chunk of its build and, before it loads the
 *   program, refuses to run (exit 1, naming the files) when one is missing or of another size (entryCheck below).
 *   A relay already running is not affected by files replaced under it: every chunk it loads, it loads before it
 *   writes its ready file (the relay command, the admin endpoint, the crypto binding).
 * Local names are not minified, so stack traces still name the functions and classes (esbuild renames one only where
 * two modules' top-level names collide: `Relay2`); there is no source map (node reads one only under
 * --enable-source-maps, which costs memory), so a trace's line and column point into the bundle.
 *
 *   tsx scripts/build-node.ts [--outdir DIR]
 */
import { build, type Metafile, type Plugin } from 'esbuild';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const ROOT = resolve(import.meta.dirname, '..');
export const NODE_ENTRY = join(ROOT, 'cli', 'allium.ts');
export const NODE_OUTDIR = join(ROOT, 'dist', 'bundle');
/** Packages loaded from node_modules at run time rather than bundled. */
// css-tree reads its data files at run time relative to its own modules (createRequire(import.meta.url)('../data/patch.json')).
export const NODE_EXTERNAL = ['sodium-native', 'better-sqlite3', 'bufferutil', 'utf-8-validate', 'libsodium-wrappers-sumo', 'css-tree'] as const;
const STUB = 'allium-node-stub';

const zodEnglishOnly: Plugin = {
  name: 'allium-zod-english',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      /[\\/]node_modules[\\/]zod[\\/]v4[\\/]/.test(args.importer)
        ? { path: 'zod-locales', namespace: STUB, pluginData: join(args.resolveDir, '..', 'locales') }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: STUB }, (args) => ({
      contents: "export { default as en } from './en.js';\n",
      resolveDir: args.pluginData as string,
      loader: 'js',
    }));
  },
};

/**
 * cbor-extract (cbor-x's optional native string extractor) is left out on purpose: it speeds cbor-x's *decoder*,
 * which Allium never uses on untrusted bytes or otherwise (protocol/cbor-strict.ts decodes; cbor-x only encodes), and
 * a native addon bundled as JavaScript cannot load anyway. cbor-x requires it inside a try and goes on without it.
 */
const noCborExtract: Plugin = {
  name: 'allium-no-cbor-extract',
  setup(b) {
    b.onResolve({ filter: /^cbor-extract$/ }, () => ({ path: 'cbor-extract', namespace: 'allium-no-cbor-extract' }));
    b.onLoad({ filter: /.*/, namespace: 'allium-no-cbor-extract' }, () => ({
      contents: "throw new Error('cbor-extract is not part of the bundle (cbor-x decodes without it; Allium does not decode with cbor-x)');\n",
      loader: 'js',
    }));
  },
};

/**
 * prom-client requires @opentelemetry/api (42 KiB bundled, with the globals it registers as it loads) for one use:
 * the trace and span ids of exemplars on its CPU counter, read only when a metric is created with exemplars enabled.
 * Allium never enables them, so the bundle gets an empty module in its place (exemplars enabled would fail with a
 * TypeError at the first collection).
 */
const noOpenTelemetry: Plugin = {
  name: 'allium-no-opentelemetry',
  setup(b) {
    b.onResolve({ filter: /^@opentelemetry\/api$/ }, (args) =>
      /[\\/]node_modules[\\/]prom-client[\\/]/.test(args.importer) ? { path: 'opentelemetry-api', namespace: 'allium-no-opentelemetry' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'allium-no-opentelemetry' }, () => ({
      contents: '// @opentelemetry/api: used by prom-client for exemplars only, which Allium does not enable\nmodule.exports = {};\n',
      loader: 'js',
    }));
  },
};

export interface NodeBuild {
  /** The entry's path. */
  file: string;
  /** Bytes of every output file. */
  bytes: number;
  metafile: Metafile;
}

/**
 * Code put first in the entry: every chunk of the build (path relative to the entry, and its size in bytes) must be
 * there, else the command stops before loading the program. A few dozen stat calls at each start.
 */
export function entryCheck(chunks: Readonly<Record<string, number>>): string {
  return (
    "import { statSync as __alliumStat } from 'node:fs';\n" +
    `{const bad=Object.entries(${JSON.stringify(chunks)}).filter(([f,n])=>{try{return __alliumStat(new URL(f,import.meta.url)).size!==n}catch{return true}}).map(([f])=>f);` +
    "if(bad.length>0){process.stderr.write(`allium: ${new URL('.',import.meta.url).pathname} is incomplete or mixed with another build (missing or of another size: ${bad.join(', ')}); reinstall the package\\n`);process.exit(1)}}\n"
  );
}

/**
 * Bundles cli/allium.ts into `outdir`/allium.js and `outdir`/chunks/. The entry's check runs after the chunks it
 * imports statically have loaded (ES modules link first): a missing one of those stops the start with Node's own
 * ERR_MODULE_NOT_FOUND, naming it; the check covers the chunks loaded on demand, which would otherwise fail later.
 */
export async function buildNodeBundle(dir = NODE_OUTDIR): Promise<NodeBuild> {
  // absolute: esbuild's output paths are, and the entry is found among them by path
  const outdir = resolve(dir);
  rmSync(outdir, { recursive: true, force: true });
  const result = await build({
    entryPoints: [NODE_ENTRY],
    outdir,
    entryNames: '[name]',
    chunkNames: 'chunks/[name]-[hash]',
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: ['node20'],
    // whitespace and syntax only: minified local names would take another 0.3 MiB off a relay's heap but leave
    // stack traces naming `a` and `Ke` (and keepNames, to put the names back, costs 0.8 MiB)
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'none',
    metafile: true,
    write: false,
    logLevel: 'warning',
    absWorkingDir: ROOT,
    external: [...NODE_EXTERNAL],
    banner: { js: "import { createRequire as __alliumRequire } from 'node:module'; const require = __alliumRequire(import.meta.url);" },
    plugins: [zodEnglishOnly, noCborExtract, noOpenTelemetry],
  });
  const entry = join(outdir, 'allium.js');
  const chunks = Object.fromEntries(result.outputFiles.filter((f) => f.path !== entry).map((f) => [`./${relative(outdir, f.path)}`, f.contents.byteLength]));
  let bytes = 0;
  for (const f of result.outputFiles) {
    const contents = f.path === entry ? Buffer.concat([Buffer.from(entryCheck(chunks)), f.contents]) : f.contents;
    mkdirSync(dirname(f.path), { recursive: true });
    writeFileSync(f.path, contents);
    bytes += contents.byteLength;
  }
  return { file: entry, bytes, metafile: result.metafile };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const i = process.argv.indexOf('--outdir');
  const outdir = i > 0 && process.argv[i + 1] ? resolve(process.argv[i + 1]!) : NODE_OUTDIR;
  const { file, bytes } = await buildNodeBundle(outdir);
  console.log(`${file}: ${(bytes / 1024).toFixed(0)} KiB with its chunks`);
}
