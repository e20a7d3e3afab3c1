#!/usr/bin/env node
// Runs the command line's bundle when the package is built (dist/bundle/, scripts/build-node.ts), else the compiled
// modules (dist/cli/), and in a checkout without a build the TypeScript sources through tsx.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const built = [join(root, 'dist', 'bundle', 'allium.js'), join(root, 'dist', 'cli', 'allium.js')].find((f) => existsSync(f));
process.argv[1] = join(root, 'cli', 'allium');
if (built) {
  await import(pathToFileURL(built).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(pathToFileURL(join(root, 'cli', 'allium.ts')).href);
}
