/**
 * Erasure coding for file segments (specs/content.md §3.2): a segment of k data blocks gets m parity blocks;
 * any k of the k + m rebuild the data. Implemented in protocol/reed-solomon.ts.
 */
import { rsEncode, rsReconstruct } from './reed-solomon.js';

export async function encodeParity(data: readonly Uint8Array[], m: number, shardLen: number): Promise<Uint8Array[]> {
  return rsEncode(data, m, shardLen);
}

export async function reconstruct(shards: readonly (Uint8Array | null)[], k: number, shardLen: number): Promise<Uint8Array[]> {
  return rsReconstruct(shards, k, shardLen);
}
