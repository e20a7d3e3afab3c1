/**
 * The majority cross-check of directory sources (specs/directory.md §6.2): a relay is kept when more than half of the
 * sources returned a valid descriptor for it. A minority of lying sources can neither omit nor inject relays.
 */
import { verifyDescriptor, type Descriptor } from '../protocol/descriptor.js';

export interface CrossCheckResult {
  readonly accepted: Descriptor[];
  /** Fingerprints some source returned but fewer than a majority confirmed. */
  readonly rejected: string[];
  readonly sources: number;
}

/**
 * Majority cross-check: a relay is kept when more than half of the sources returned a valid descriptor for it; the
 * newest valid descriptor among them is used. Invalid descriptors are discarded (and count for nothing).
 */
export function crossCheck(perSource: readonly (readonly Uint8Array[])[], now: number): CrossCheckResult {
  return crossCheckVerified(perSource.map((raws) => verifiedOf(raws, now)));
}

/** The descriptors among `raws` that verify at `now` (invalid ones count for nothing). */
export function verifiedOf(raws: readonly Uint8Array[], now: number): Descriptor[] {
  const out: Descriptor[] = [];
  for (const raw of raws) {
    try {
      out.push(verifyDescriptor(raw, now));
    } catch {
      /* counts for nothing */
    }
  }
  return out;
}

/** The majority cross-check over descriptors each source returned, already verified. */
export function crossCheckVerified(perSource: readonly (readonly Descriptor[])[]): CrossCheckResult {
  const votes = new Map<string, { count: number; best: Descriptor }>();
  for (const ds of perSource) {
    const seen = new Set<string>();
    for (const d of ds) {
      seen.add(d.fingerprint);
      const v = votes.get(d.fingerprint);
      if (!v) votes.set(d.fingerprint, { count: 1, best: d });
      else {
        v.count++;
        if (d.pub > v.best.pub) v.best = d;
      }
    }
  }
  const need = Math.floor(perSource.length / 2) + 1;
  const accepted: Descriptor[] = [];
  const rejected: string[] = [];
  for (const [fp, v] of votes) v.count >= need ? accepted.push(v.best) : rejected.push(fp);
  return { accepted, rejected, sources: perSource.length };
}
