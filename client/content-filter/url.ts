/**
 * URL rewriting for the content filter (specs/content.md §13.2 RewriteUrl). A URL in a filtered document is resolved
 * the way the browser will resolve it (the WHATWG URL parser), against the document's own gateway URL, and survives
 * only as an absolute gateway path under /allium:chk/ or /allium:ssk/, or as a fragment of the same document. Links
 * the reader clicks (`<a href>`) to anywhere else become the gateway's /external page, which names the address as
 * text; every other URL to anywhere else is dropped (null).
 *
 * The result is resolved a second time and checked again, so what the browser resolves is exactly what was checked
 * (an `allium:` URL has an opaque path that the parser does not normalise: `allium:chk/K/../../x` would otherwise
 * climb out to the gateway's own pages). Every character outside a small safe set is percent-encoded.
 */

/** Where a URL appears: a link the reader follows, or a resource the browser loads by itself. */
export type UrlKind = 'link' | 'resource';

const CONTENT_PATH = /^\/allium:(?:chk|ssk)\/[A-Za-z2-7]+(?:\/|$)/i;
const FRAGMENT = /^#[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*$/;

function safe(text: string): string {
  return text.replace(/[^A-Za-z0-9/:._~%-]/g, (c) => encodeURIComponent(c).replace(/[!'()*]/g, (x) => `%${x.charCodeAt(0).toString(16).toUpperCase()}`));
}

function resolveInside(candidate: string, base: URL): URL | null {
  let u: URL;
  try {
    u = new URL(candidate, base);
  } catch {
    return null;
  }
  if (u.origin !== base.origin || !CONTENT_PATH.test(u.pathname)) return null;
  return u;
}

/**
 * The rewritten URL, or null when it must be dropped. `base` is the document's URL at the gateway (its origin is
 * the gateway's, as the browser addresses it).
 */
export function rewriteUrl(value: string, base: URL, kind: UrlKind): string | null {
  // The URL parser strips leading and trailing C0 controls and spaces, and tabs and newlines anywhere.
  const v = value.replace(/[\t\n\r]/g, '').replace(/^[\u0000-\u0020]+|[\u0000-\u0020]+$/g, '');
  if (v.startsWith('#')) return FRAGMENT.test(v) ? v : null;
  let u: URL;
  try {
    u = new URL(v, base);
  } catch {
    return null;
  }
  let candidate: string | null = null;
  if (u.protocol === 'allium:') candidate = `/allium:${u.pathname}`;
  else if (u.origin === base.origin) candidate = u.pathname;
  const inside = candidate === null ? null : resolveInside(safe(candidate), base);
  if (inside) {
    const again = resolveInside(safe(inside.pathname), base);
    if (again && again.pathname === inside.pathname) return safe(inside.pathname) + (u.hash && FRAGMENT.test(u.hash) ? u.hash : '');
  }
  return kind === 'link' ? `/external?url=${encodeURIComponent(v.slice(0, 2048))}` : null;
}

/**
 * A srcset attribute rewritten candidate by candidate (HTML's "parse a srcset attribute", simplified: a candidate
 * whose descriptor is not one width or density is dropped). Null when no candidate survives.
 */
export function rewriteSrcset(value: string, base: URL): string | null {
  const out: string[] = [];
  let i = 0;
  const n = value.length;
  const space = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f';
  while (i < n) {
    while (i < n && (space(value[i]) || value[i] === ',')) i++;
    if (i >= n) break;
    let j = i;
    while (j < n && !space(value[j])) j++;
    let url = value.slice(i, j);
    i = j;
    let descriptor = '';
    if (url.endsWith(',')) url = url.replace(/,+$/, '');
    else {
      let depth = 0;
      const start = i;
      while (i < n) {
        const c = value[i]!;
        if (c === '(') depth++;
        else if (c === ')') depth = Math.max(0, depth - 1);
        else if (c === ',' && depth === 0) break;
        i++;
      }
      descriptor = value.slice(start, i).trim();
      i++;
    }
    if (descriptor !== '' && !/^\d+(?:\.\d+)?[wx]$/.test(descriptor)) continue;
    const rewritten = rewriteUrl(url, base, 'resource');
    if (rewritten !== null && !rewritten.includes(',')) out.push(descriptor ? `${rewritten} ${descriptor}` : rewritten);
  }
  return out.length ? out.join(', ') : null;
}
