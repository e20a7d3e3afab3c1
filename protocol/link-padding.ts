/**
 * Link padding (specs/link.md §4.4): the bounds a client asks for, and the delay a padding side waits on an idle
 * link before it sends an all-PADDING frame. Pure: the caller supplies the uniform draws (from the CSPRNG).
 *
 *   D = lo + max(U1, U2) · (hi − lo)         U1, U2 uniform in [0, 1)
 *
 * The larger of two draws leans towards longer gaps (mean lo + 2/3 (hi − lo)), as Tor's link padding does, so an
 * idle link costs less than with a single uniform draw over the same bounds while never falling silent past `hi`.
 */

/** Smallest `lo` a relay honours: padding more often than once a second buys nothing against flow records. */
export const LINK_PADDING_MIN_MS = 1_000;
/** Largest `hi` a relay honours. */
export const LINK_PADDING_MAX_MS = 60_000;

/** Bounds of the delay before a padding frame, in milliseconds. */
export interface LinkPadding {
  readonly lo: number;
  readonly hi: number;
}

/** The client's settings (link.md §4.4): 'auto' by default, 'reduced' for metered links, 'off'. */
export type LinkPaddingMode = 'auto' | 'reduced' | 'off';

export const LINK_PADDING_AUTO: LinkPadding = { lo: 1_500, hi: 9_500 };
export const LINK_PADDING_REDUCED: LinkPadding = { lo: 9_000, hi: 14_000 };

/** The bounds of a mode, null for 'off'. */
export function linkPaddingOf(mode: LinkPaddingMode): LinkPadding | null {
  return mode === 'off' ? null : mode === 'reduced' ? LINK_PADDING_REDUCED : LINK_PADDING_AUTO;
}

/**
 * What a relay does with a `padding` request's bounds: the bounds to pad with, null to stop (0, 0), or 'ignore'
 * for bounds outside LINK_PADDING_MIN_MS ≤ lo ≤ hi ≤ LINK_PADDING_MAX_MS.
 */
export function acceptLinkPadding(lo: number, hi: number): LinkPadding | null | 'ignore' {
  if (lo === 0 && hi === 0) return null;
  if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi) || lo < LINK_PADDING_MIN_MS || hi < lo || hi > LINK_PADDING_MAX_MS) return 'ignore';
  return { lo, hi };
}

/** The delay before the next padding frame, from two uniform draws in [0, 1). */
export function linkPaddingDelay(p: LinkPadding, u1: number, u2: number): number {
  return p.lo + Math.max(u1, u2) * (p.hi - p.lo);
}
