/**
 * The SVG filter (specs/content.md §13.5): a standalone SVG document parsed as HTML foreign content (parse5) and
 * rebuilt from an SVG allow-list, serialised as XML by this file. `use` keeps only local fragments; `image` and `a`
 * have their URLs rewritten; attribute values may name paint servers only locally (`url(#id)`); no scripts,
 * foreignObject, animation or filter primitives (feImage loads URLs).
 */
import { defaultTreeAdapter as T, html as H, parse, type DefaultTreeAdapterMap } from 'parse5';
import { ProtocolError } from '../../protocol/errors.js';
import { filterCss, filterStyleAttribute } from './css.js';
import { checkFilterSize, decodeDocument, MAX_FILTER_DEPTH, type FilterOptions } from './html.js';
import { rewriteUrl } from './url.js';

type Node = DefaultTreeAdapterMap['node'];
type Element = DefaultTreeAdapterMap['element'];

const SVG_ELEMENTS = new Set([
  'svg',
  'g',
  'defs',
  'title',
  'desc',
  'symbol',
  'use',
  'path',
  'rect',
  'circle',
  'ellipse',
  'line',
  'polyline',
  'polygon',
  'text',
  'tspan',
  'textPath',
  'linearGradient',
  'radialGradient',
  'stop',
  'pattern',
  'clipPath',
  'mask',
  'marker',
  'image',
  'a',
  'style',
]);

const SVG_ATTRIBUTES = new Set([
  'id',
  'class',
  'style',
  'lang',
  'x',
  'y',
  'width',
  'height',
  'rx',
  'ry',
  'cx',
  'cy',
  'r',
  'fx',
  'fy',
  'x1',
  'y1',
  'x2',
  'y2',
  'points',
  'd',
  'transform',
  'viewBox',
  'preserveAspectRatio',
  'fill',
  'fill-opacity',
  'fill-rule',
  'stroke',
  'stroke-width',
  'stroke-linecap',
  'stroke-linejoin',
  'stroke-dasharray',
  'stroke-dashoffset',
  'stroke-miterlimit',
  'stroke-opacity',
  'opacity',
  'color',
  'font-family',
  'font-size',
  'font-style',
  'font-weight',
  'text-anchor',
  'dominant-baseline',
  'letter-spacing',
  'word-spacing',
  'text-decoration',
  'offset',
  'stop-color',
  'stop-opacity',
  'gradientUnits',
  'gradientTransform',
  'spreadMethod',
  'patternUnits',
  'patternContentUnits',
  'patternTransform',
  'clipPathUnits',
  'maskUnits',
  'maskContentUnits',
  'clip-path',
  'clip-rule',
  'mask',
  'marker-start',
  'marker-mid',
  'marker-end',
  'markerWidth',
  'markerHeight',
  'markerUnits',
  'refX',
  'refY',
  'orient',
  'dx',
  'dy',
  'rotate',
  'textLength',
  'lengthAdjust',
  'startOffset',
  'visibility',
  'display',
  'vector-effect',
  'shape-rendering',
  'paint-order',
  'version',
  'href',
]);

const LOCAL_PAINT = /^url\(\s*(['"]?)#[A-Za-z0-9_.:-]+\1\s*\)$/i;

const escapeAttr = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const escapeText = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function attributesOf(el: Element, o: FilterOptions): string[] | null {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const a of el.attrs) {
    // xlink:href (namespaced) counts as href; every other namespaced attribute goes.
    const name = a.namespace === H.NS.XLINK && a.name === 'href' ? 'href' : a.namespace ? null : a.name;
    if (name === null || !SVG_ATTRIBUTES.has(name) || seen.has(name)) continue;
    let value: string | null = a.value;
    if (name === 'href') {
      if (el.tagName === 'use' || el.tagName === 'textPath') value = /^#[A-Za-z0-9_.:-]+$/.test(a.value.trim()) ? a.value.trim() : null;
      else if (el.tagName === 'a') value = rewriteUrl(a.value, o.base, 'link');
      else if (el.tagName === 'image') value = rewriteUrl(a.value, o.base, 'resource');
      else value = null;
    } else if (name === 'style') {
      value = filterStyleAttribute(a.value, o.base) || null;
    } else if (/\\/.test(a.value) || (/url\s*\(/i.test(a.value) && !LOCAL_PAINT.test(a.value.trim()))) value = null;
    if (value === null) continue;
    seen.add(name);
    out.push(`${name}="${escapeAttr(value)}"`);
  }
  if ((el.tagName === 'use' || el.tagName === 'image') && !seen.has('href')) return null;
  return out;
}

function findSvg(root: DefaultTreeAdapterMap['parentNode']): Element | null {
  const stack: Node[] = [...root.childNodes];
  while (stack.length) {
    const n = stack.shift()!;
    if (!('tagName' in n)) continue;
    const el = n as Element;
    if (el.tagName === 'svg' && el.namespaceURI === H.NS.SVG) return el;
    if (el.namespaceURI === H.NS.HTML) stack.push(...el.childNodes);
  }
  return null;
}

/** Filters an SVG document; returns XML text. Throws ERR_FILTER (no <svg> root, too large, parser failure). */
export function filterSvg(input: Uint8Array | string, o: FilterOptions): string {
  checkFilterSize(input);
  const text = typeof input === 'string' ? input : decodeDocument(input);
  let svg: Element | null;
  try {
    svg = findSvg(parse(text, { scriptingEnabled: false }));
  } catch (e) {
    throw new ProtocolError('ERR_FILTER', `the SVG could not be parsed (${(e as Error).name})`);
  }
  if (!svg) throw new ProtocolError('ERR_FILTER', 'not an SVG document');
  const out: string[] = [];
  // An explicit stack of open/close work items: hostile nesting costs no call stack.
  type Work = { node: Node; depth: number } | { close: string };
  const stack: Work[] = [{ node: svg, depth: 0 }];
  while (stack.length) {
    const w = stack.pop()!;
    if ('close' in w) {
      out.push(`</${w.close}>`);
      continue;
    }
    const { node, depth } = w;
    if (node.nodeName === '#text') {
      out.push(escapeText((node as DefaultTreeAdapterMap['textNode']).value));
      continue;
    }
    if (!('tagName' in node)) continue;
    const el = node as Element;
    if (el.namespaceURI !== H.NS.SVG || !SVG_ELEMENTS.has(el.tagName)) continue;
    if (el.tagName === 'style') {
      const css = filterCss(
        T.getChildNodes(el)
          .map((c) => (c.nodeName === '#text' ? (c as DefaultTreeAdapterMap['textNode']).value : ''))
          .join(''),
        o.base,
      );
      if (css.trim()) out.push(`<style>${escapeText(css)}</style>`);
      continue;
    }
    if (depth >= MAX_FILTER_DEPTH) continue;
    const attrs = attributesOf(el, o);
    if (!attrs) continue;
    if (depth === 0) attrs.unshift('xmlns="http://www.w3.org/2000/svg"');
    out.push(`<${el.tagName}${attrs.length ? ' ' + attrs.join(' ') : ''}>`);
    stack.push({ close: el.tagName });
    for (let i = el.childNodes.length - 1; i >= 0; i--) stack.push({ node: el.childNodes[i]!, depth: depth + 1 });
  }
  return `<?xml version="1.0" encoding="UTF-8"?>\n${out.join('')}\n`;
}
