/**
 * Child processes a benchmark starts and stops itself (by their own pid, never by name): the SOCKS client process
 * and the delaying TCP forwarder. Each prints one JSON line when ready.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Runtime } from './compiled.js';

export interface Child<T> {
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly info: T;
  readonly logs: () => string;
  stop(): Promise<void>;
}

/** Spawns `node [loader] [nodeArgs] script args…` and waits for its first stdout line (JSON). */
export async function startChild<T>(
  rt: Runtime,
  module: string,
  args: readonly string[],
  timeoutMs = 60_000,
  nodeArgs: readonly string[] = [],
): Promise<Child<T>> {
  const proc = spawn(process.execPath, [...rt.loaderArgs, ...nodeArgs, rt.module(module), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const info = await new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${module} did not start:\n${err}`)), timeoutMs);
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        try {
          resolve(JSON.parse(out.slice(0, nl)) as T);
        } catch (e) {
          reject(e);
        }
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${module} exited (${code}):\n${err}`));
    });
  });
  return {
    proc,
    pid: proc.pid!,
    info,
    logs: () => err,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }
    },
  };
}
