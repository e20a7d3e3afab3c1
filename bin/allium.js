#!/usr/bin/env node
// Runs the command line's bundle when the package is built (dist/bundle/, scripts/build-node.ts), else the compiled
// modules (dist/cli/), and in a checkout without a build the TypeScript sources through tsx.
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bundle = join(root, 'dist', 'bundle', 'allium.js');
const modules = join(root, 'dist', 'cli', 'allium.js');
// The bundle unless the modules were built after it (tsc run alone in a checkout): never code older than the build.
// The bundle only beside the modules of the same build (a bundle left alone in a checkout, by a test that builds
// it, would otherwise stand in for the sources).
const fresh = (f) => existsSync(f) && existsSync(modules) && statSync(f).mtimeMs >= statSync(modules).mtimeMs;
const built = [bundle, modules].find(fresh);
process.argv[1] = join(root, 'cli', 'allium');
if (built) {
  await import(pathToFileURL(built).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(pathToFileURL(join(root, 'cli', 'allium.ts')).href);
}
