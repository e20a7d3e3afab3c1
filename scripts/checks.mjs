#!/usr/bin/env node
/**
 * The checks `npm test` runs before mocha — typecheck, lint (eslint, prettier) and build — two at a time: each is
 * one process on one core, and the order between them does not matter (the build writes only dist/, which eslint
 * and prettier ignore). Each check's output is printed whole when it ends, so two never interleave. Exits 1 when any
 * check failed, after every started check has ended.
 */
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';

const checks = [
  ['typecheck', 'npm', ['run', '-s', 'typecheck']],
  ['eslint', 'npx', ['eslint', '.']],
  ['prettier', 'npx', ['prettier', '--check', '--log-level', 'warn', '.']],
  ['build', 'npm', ['run', '-s', 'build']],
];

function run([name, cmd, args]) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out = [];
    child.stdout.on('data', (b) => out.push(b));
    child.stderr.on('data', (b) => out.push(b));
    child.on('error', (e) => out.push(Buffer.from(`${e.message}\n`)));
    child.on('close', (code) => {
      const text = Buffer.concat(out).toString();
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      process.stdout.write(`${code === 0 ? 'ok' : 'FAILED'}: ${name} (${seconds} s)\n${text}`);
      resolve(code === 0);
    });
  });
}

const width = Math.max(1, Math.min(availableParallelism(), 2));
const queue = [...checks];
let ok = true;
await Promise.all(
  Array.from({ length: width }, async () => {
    while (queue.length > 0) if (!(await run(queue.shift()))) ok = false;
  }),
);
process.exit(ok ? 0 : 1);
