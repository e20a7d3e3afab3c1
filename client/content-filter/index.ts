/**
 * The content filter (specs/content.md §13): what the gateway serves for a document of a given media type.
 *
 *   filterDocument({ type, bytes, base, scripts }) → { body, contentType, csp } | { download: true }
 */
import { isAlliumError } from '../../protocol/errors.js';
import { filterCss } from './css.js';
import { checkFilterSize, decodeDocument, filterHtml, MAX_FILTERED_BYTES } from './html.js';
import { documentCsp, FILE_CSP, treatmentOf, type Treatment } from './policy.js';
import { filterSvg } from './svg.js';

export { filterHtml, filterCss, filterSvg, MAX_FILTERED_BYTES, treatmentOf, type Treatment };
export { documentCsp, FILE_CSP, GATEWAY_PAGE_CSP, essence } from './policy.js';
export { rewriteUrl, rewriteSrcset } from './url.js';

export interface Filtered {
  readonly body: string;
  readonly contentType: string;
  readonly csp: string;
}

/**
 * Filters a whole document that needs rewriting (treatment html, css or svg). Throws ERR_FILTER when it cannot be
 * made safe; the caller offers it as a download.
 */
export function filterDocument(treatment: 'html' | 'css' | 'svg', bytes: Uint8Array, base: URL, scripts: boolean): Filtered {
  checkFilterSize(bytes);
  if (treatment === 'html') return { body: filterHtml(bytes, { base, scripts }), contentType: 'text/html; charset=utf-8', csp: documentCsp(scripts) };
  if (treatment === 'svg') return { body: filterSvg(bytes, { base }), contentType: 'image/svg+xml', csp: documentCsp(false) };
  return { body: filterCss(decodeDocument(bytes), base), contentType: 'text/css; charset=utf-8', csp: FILE_CSP };
}

/** True for the errors a filter raises on purpose (the document is offered as a download instead). */
export function isFilterRefusal(e: unknown): boolean {
  return isAlliumError(e) && (e.code === 'ERR_FILTER' || e.code === 'ERR_LIMIT');
}
