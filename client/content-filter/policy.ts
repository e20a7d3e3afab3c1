/**
 * What the gateway does with each media type (specs/content.md §13.1), and the Content-Security-Policy headers that
 * are the second wall (§13.4).
 */

export type Treatment = 'html' | 'css' | 'svg' | 'pass' | 'text' | 'script' | 'download';

const PASS = new Set([
  'image/png',
  'image/jpeg',
  'image/gif',
  'image/webp',
  'image/avif',
  'image/bmp',
  'image/x-icon',
  'image/vnd.microsoft.icon',
  'video/mp4',
  'video/webm',
  'video/ogg',
  'audio/mpeg',
  'audio/ogg',
  'audio/wav',
  'audio/webm',
  'audio/flac',
  'audio/mp4',
  'font/woff',
  'font/woff2',
  'font/ttf',
  'font/otf',
]);

/** The bare type of a media type (no parameters, lower case). */
export function essence(type: string): string {
  return type.split(';')[0]!.trim().toLowerCase();
}

export function treatmentOf(type: string): Treatment {
  const t = essence(type);
  if (t === 'text/html' || t === 'application/xhtml+xml') return 'html';
  if (t === 'text/css') return 'css';
  if (t === 'image/svg+xml') return 'svg';
  if (t === 'text/plain') return 'text';
  if (t === 'text/javascript' || t === 'application/javascript') return 'script';
  if (PASS.has(t)) return 'pass';
  return 'download';
}

/** Filtered HTML and SVG: nothing leaves the gateway; scripts only when the reader turned them on for the site. */
export function documentCsp(scripts: boolean): string {
  const common =
    "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'self' 'unsafe-inline'; font-src 'self'; form-action 'none'; base-uri 'none'; frame-src 'none'";
  return scripts
    ? `${common}; script-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; sandbox allow-scripts allow-downloads`
    : `${common}; frame-ancestors 'self'; sandbox allow-same-origin allow-downloads`;
}

/** Files, stylesheets and downloads. */
export const FILE_CSP =
  "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'self' 'unsafe-inline'; font-src 'self'; form-action 'none'; frame-ancestors 'self'; sandbox";

/** The gateway's own pages (home, errors, the external-link page). */
export const GATEWAY_PAGE_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
