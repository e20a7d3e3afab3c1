/**
 * The command line's bundle (dist/bundle/, built by scripts/build-node.ts; bin/allium.js runs it when it is there):
 * its entry loads nothing of the program before it has capped V8's young generation, the native and optional
 * packages stay outside it, and a storeless relay started through bin/allium.js runs from it with sodium-native
 * loaded and stops cleanly; an entry whose chunks are not all there, as built, refuses to run.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { cpSync, readFileSync, readdirSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Metafile } from 'esbuild';
import { INSTALLED_ENTRY, spawnRelay } from '../../cli/relay-process.js';
import { NODE_EXTERNAL, NODE_OUTDIR, buildNodeBundle } from '../../scripts/build-node.js';
import { tempDir } from '../helpers/network.js';

const ROOT = resolve(import.meta.dirname, '..', '..');

describe('command-line bundle (dist/bundle/allium.js)', function () {
  this.timeout(120_000);
  let metafile: Metafile;

  before(async () => {
    // Built where bin/allium.js looks for it, so that its packages resolve from the checkout's node_modules.
    metafile = (await buildNodeBundle(NODE_OUTDIR)).metafile;
  });

  it('its entry statically loads only cli/young-generation.ts, node built-ins and chunks without modules of ours', () => {
    const rel = (p: string): string => p.replace(/^.*?dist\/bundle\//, '');
    const outputs = Object.fromEntries(Object.entries(metafile.outputs).map(([k, v]) => [rel(k), v]));
    const entry = outputs['allium.js']!;
    expect(Object.keys(entry.inputs).sort()).to.deep.equal(['cli/allium.ts', 'cli/young-generation.ts']);
    for (const i of entry.imports.filter((i) => i.kind === 'import-statement')) {
      if (i.external) expect(i.path).to.match(/^node:/);
      else expect(Object.keys(outputs[rel(i.path)]!.inputs), i.path).to.deep.equal([]);
    }
    expect(entry.imports.filter((i) => i.kind === 'dynamic-import').length).to.be.greaterThan(0);
  });

  it('leaves the native and optional packages out, and zod with its English messages only', () => {
    const inputs = Object.keys(metafile.inputs);
    for (const name of NODE_EXTERNAL)
      expect(
        inputs.filter((i) => i.includes(`node_modules/${name}/`)),
        name,
      ).to.deep.equal([]);
    // cbor-x's native decoder helper, deliberately (scripts/build-node.ts): bundled, it failed to load by accident.
    expect(inputs.filter((i) => i.includes('node_modules/cbor-extract/') || i.includes('node-gyp-build-optional-packages'))).to.deep.equal([]);
    // prom-client's exemplar helper, which Allium never enables (scripts/build-node.ts): an empty module in its place
    expect(inputs.filter((i) => i.includes('node_modules/@opentelemetry/'))).to.deep.equal([]);
    const locales = inputs.filter((i) => /node_modules\/zod\/v4\/locales\/(?!index)/.test(i));
    expect(locales.map((i) => i.replace(/^.*\//, ''))).to.deep.equal(['en.js']);
  });

  it('runs a storeless relay through bin/allium.js from the bundle, with sodium-native loaded from the package', async () => {
    const dataDir = tempDir('allium-bundle-');
    // CommonJS modules the process loaded, written as it exits: from dist/cli/ they include ws, commander and pino
    // from node_modules; from the bundle, only what stays outside it
    const loaded = join(dataDir, 'loaded.json');
    const preload = join(dataDir, 'preload.mjs');
    writeFileSync(
      preload,
      `import m from 'node:module'; import { writeFileSync } from 'node:fs';\nprocess.once('exit', () => writeFileSync(${JSON.stringify(loaded)}, JSON.stringify(Object.keys(m._cache))));\n`,
    );
    const relay = await spawnRelay(
      dataDir,
      { listen: '127.0.0.1:0', metrics: '127.0.0.1:0', storage_quota: 0, log_level: 'warn', exit_policy: ['reject *:*'] },
      { entry: INSTALLED_ENTRY, nodeArgs: ['--import', pathToFileURL(preload).href] },
    );
    try {
      expect(relay.bootstrap).to.match(/^ws:\/\/127\.0\.0\.1:\d+/);
      // the addon is mapped into the process: the bundle's createRequire found it from dist/bundle/chunks/
      expect(readFileSync(`/proc/${relay.pid}/maps`, 'utf8')).to.match(/sodium-native.*\.node/);
      // prom-client's process metrics collect without @opentelemetry/api
      expect(await relay.metric('process_cpu_user_seconds_total')).to.be.greaterThan(0);
    } finally {
      expect(await relay.kill('SIGTERM'), relay.logs()).to.equal(0);
    }
    const modules = (JSON.parse(readFileSync(loaded, 'utf8')) as string[]).map((f) => f.slice(ROOT.length + 1));
    rmSync(dataDir, { recursive: true, force: true });
    expect(modules.some((f) => f.startsWith('node_modules/sodium-native/'))).to.equal(true);
    for (const name of ['ws', 'commander', 'pino'])
      expect(
        modules.filter((f) => f.startsWith(`node_modules/${name}/`)),
        name,
      ).to.deep.equal([]);
  });

  it('refuses to run, naming the files, when a chunk of its build is missing or cut short (a copy or upgrade that stopped part way)', () => {
    const dir = tempDir('allium-bundle-copy-');
    try {
      cpSync(NODE_OUTDIR, join(dir, 'bundle'), { recursive: true });
      symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
      const run = (): ReturnType<typeof spawnSync> => spawnSync(process.execPath, [join(dir, 'bundle', 'allium.js'), '--version'], { encoding: 'utf8' });
      const intact = run();
      expect(intact.status, String(intact.stderr)).to.equal(0);
      // chunks only `import()` loads, when a command needs them: without the check, `--version` ran from this copy
      const chunks = readdirSync(join(dir, 'bundle', 'chunks'));
      const devnet = chunks.find((f) => f.startsWith('devnet-'))!;
      const admin = chunks.find((f) => f.startsWith('admin-'))!;
      rmSync(join(dir, 'bundle', 'chunks', devnet));
      truncateSync(join(dir, 'bundle', 'chunks', admin), 10);
      const r = run();
      expect(r.status).to.equal(1);
      expect(String(r.stderr)).to.include('incomplete or mixed with another build').and.include(`./chunks/${devnet}`).and.include(`./chunks/${admin}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
