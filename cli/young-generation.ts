/**
 * The size of V8's young generation in a relay process (issue 18: a relay's memory at rest and after a transfer).
 *
 * V8 starts a process with two 1 MiB semi-spaces and doubles them whenever many young objects survive a scavenge,
 * up to two 16 MiB ones. Loading the relay's modules gets it to 8 MiB and forming the mesh or a bulk transfer to 32,
 * of which 23-29 MB were resident 20 s after the mesh formed (3 relays, one run): 108-112 MB of RSS against 84-88
 * with the cap. V8's memory reducer gives the pages back only after a while of quiet, and the next burst takes them
 * again; the cells a relay handles die young either way. So `allium relay` keeps the young generation at its
 * starting size, unless the operator sized it (--max-semi-space-size or --semi-space-growth-factor on node's
 * command line or in NODE_OPTIONS). The growth factor is the one young-generation setting V8 still reads once the
 * heap is set up, and it must be set before the modules load: cli/allium.ts, the entry, calls it before it loads the program, and
 * only when the command is `relay`.
 */
import { setFlagsFromString } from 'node:v8';

/** Node flags that size V8's young generation. */
const YOUNG_GENERATION_FLAG = /^--(max[-_]semi[-_]space[-_]size|semi[-_]space[-_]growth[-_]factor)(=|$)/;

/** True when node was started with a young-generation flag (then V8's sizing is the operator's choice). */
export function youngGenerationSized(execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  return [...execArgv, ...(nodeOptions ?? '').split(/\s+/)].some((a) => YOUNG_GENERATION_FLAG.test(a));
}

/** Stops V8 from growing the young generation past its starting size, unless node was given a size. */
export function capYoungGeneration(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env['NODE_OPTIONS']): boolean {
  if (youngGenerationSized(execArgv, nodeOptions)) return false;
  setFlagsFromString('--semi-space-growth-factor=1');
  return true;
}
