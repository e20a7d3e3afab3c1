/**
 * The HTML filter (specs/content.md §13.2): parses a document as browsers do (parse5, scripting off) and builds a
 * new document from what html-rules.ts allows, with every URL rewritten (url.ts) and every stylesheet filtered
 * (css.ts). Nothing of the input reaches the output unless a rule lets it through. The walk is iterative (an
 * explicit stack), so hostile nesting costs memory linear in the input and no call stack; elements are rebuilt to a
 * depth of MAX_FILTER_DEPTH, below which only their text is kept.
 */
import { defaultTreeAdapter as T, html as H, parse, serialize, type DefaultTreeAdapterMap } from 'parse5';
import { LimitError, ProtocolError } from '../../protocol/errors.js';
import { filterCss, filterStyleAttribute } from './css.js';
import { DROP, GLOBAL_ATTRIBUTES, HTML_ELEMENTS, INPUT_TYPES, LINK_RELS, NEEDS_URL, URL_ATTRIBUTES } from './html-rules.js';
import { rewriteSrcset, rewriteUrl } from './url.js';

type Node = DefaultTreeAdapterMap['node'];
type Element = DefaultTreeAdapterMap['element'];
type ParentNode = DefaultTreeAdapterMap['parentNode'];

/** Largest HTML, CSS or SVG document the filter reads (specs/limits.md). */
export const MAX_FILTERED_BYTES = 8 * 1024 * 1024;
/** Element nesting rebuilt (specs/limits.md). */
export const MAX_FILTER_DEPTH = 256;

export interface FilterOptions {
  /** The document's URL at the gateway: relative URLs resolve against it. */
  base: URL;
  /** Keep <script> elements (the reader turned scripts on for this site, content.md §12.4). */
  scripts?: boolean;
}

/** Decodes a document: BOM, else a <meta charset> in the first 1024 bytes, else UTF-8 (content.md §13.2). */
export function decodeDocument(bytes: Uint8Array): string {
  let label = 'utf-8';
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) label = 'utf-8';
  else if (bytes[0] === 0xfe && bytes[1] === 0xff) label = 'utf-16be';
  else if (bytes[0] === 0xff && bytes[1] === 0xfe) label = 'utf-16le';
  else {
    const head = new TextDecoder('latin1').decode(bytes.subarray(0, 1024));
    const m = /<meta[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_:.-]{1,40})/i.exec(head);
    if (m && !/^utf-?16/i.test(m[1]!)) label = m[1]!.toLowerCase();
  }
  try {
    return new TextDecoder(label).decode(bytes);
  } catch {
    return new TextDecoder('utf-8').decode(bytes);
  }
}

export function checkFilterSize(bytes: Uint8Array | string): void {
  if (bytes.length > MAX_FILTERED_BYTES)
    throw new LimitError('MAX_FILTERED_BYTES', `documents over ${MAX_FILTERED_BYTES} bytes are not filtered`, 'ERR_FILTER');
}

const textOf = (el: Element): string =>
  el.childNodes
    .filter((c): c is DefaultTreeAdapterMap['textNode'] => c.nodeName === '#text')
    .map((c) => c.value)
    .join('');

/** The allowed attributes of an element, rewritten; null when the element must go (it needs a URL it lost). */
function filterAttributes(name: string, el: Element, o: FilterOptions): { name: string; value: string }[] | null {
  const allowed = HTML_ELEMENTS[name] ?? (name === 'script' ? ['src', 'type', 'defer', 'async'] : []);
  const out: { name: string; value: string }[] = [];
  const seen = new Set<string>();
  for (const a of el.attrs) {
    if (a.namespace || seen.has(a.name)) continue;
    const n = a.name;
    if (!(GLOBAL_ATTRIBUTES.has(n) || allowed.includes(n) || /^(?:data|aria)-[a-z0-9-]+$/.test(n))) continue;
    let value: string | null = a.value;
    if (n === 'style') {
      value = filterStyleAttribute(a.value, o.base);
      if (value === '') value = null;
    } else if (URL_ATTRIBUTES.has(n)) value = rewriteUrl(a.value, o.base, name === 'a' && n === 'href' ? 'link' : 'resource');
    else if (n === 'srcset') value = rewriteSrcset(a.value, o.base);
    else if (name === 'input' && n === 'type') value = INPUT_TYPES.has(a.value.trim().toLowerCase()) ? a.value.trim().toLowerCase() : null;
    else if (name === 'button' && n === 'type') value = 'button';
    else if (name === 'link' && n === 'rel') value = LINK_RELS.has(a.value.trim().toLowerCase().replace(/\s+/g, ' ')) ? a.value.trim().toLowerCase() : null;
    else if (name === 'link' && n === 'type') value = a.value.trim().toLowerCase() === 'text/css' ? 'text/css' : null;
    else if (name === 'script' && n === 'type') value = /^(?:module|text\/javascript|application\/javascript)$/i.test(a.value.trim()) ? a.value.trim() : null;
    if (value === null) continue;
    seen.add(n);
    out.push({ name: n, value });
  }
  if (name === 'input' && !seen.has('type')) {
    // An input without a type is a text field: fine. One whose type was refused must not become a text field silently.
    if (el.attrs.some((a) => a.name === 'type')) return null;
  }
  const needs = NEEDS_URL[name];
  if (needs && !needs.split('|').some((a) => seen.has(a))) return null;
  if (name === 'link' && !seen.has('rel')) return null;
  if (name === 'script' && !seen.has('src') && textOf(el).trim() === '') return null;
  return out;
}

interface Work {
  readonly from: Node;
  readonly to: ParentNode;
  readonly depth: number;
}

function rebuildChildren(children: readonly Node[], to: ParentNode, depth: number, stack: Work[]): void {
  for (let i = children.length - 1; i >= 0; i--) stack.push({ from: children[i]!, to, depth });
}

/** Rebuilds the allowed content of `from`'s children under `to`. */
function rebuild(from: ParentNode, to: ParentNode, o: FilterOptions): void {
  const stack: Work[] = [];
  rebuildChildren(from.childNodes, to, 0, stack);
  while (stack.length) {
    const { from: node, to: parent, depth } = stack.pop()!;
    if (node.nodeName === '#text') {
      T.insertText(parent, (node as DefaultTreeAdapterMap['textNode']).value);
      continue;
    }
    if (!('tagName' in node)) continue; // comments, doctypes
    const el = node as Element;
    if (el.namespaceURI !== H.NS.HTML) continue; // inline SVG and MathML
    const name = el.tagName;
    if (name === 'style') {
      const css = filterCss(textOf(el), o.base);
      if (css.trim()) {
        const style = T.createElement('style', H.NS.HTML, []);
        T.insertText(style, css);
        T.appendChild(parent, style);
      }
      continue;
    }
    if (name === 'script' && o.scripts) {
      const attrs = filterAttributes(name, el, o);
      if (attrs) {
        const script = T.createElement('script', H.NS.HTML, attrs);
        const text = textOf(el);
        if (text) T.insertText(script, text);
        T.appendChild(parent, script);
      }
      continue;
    }
    if (DROP.has(name)) continue;
    const kids = name === 'template' ? [] : el.childNodes;
    if (!(name in HTML_ELEMENTS) || depth >= MAX_FILTER_DEPTH || name === 'html' || name === 'head' || name === 'body') {
      rebuildChildren(kids, parent, depth, stack); // replaced by its content
      continue;
    }
    const attrs = filterAttributes(name, el, o);
    if (!attrs) continue;
    const copy = T.createElement(name, H.NS.HTML, attrs);
    T.appendChild(parent, copy);
    rebuildChildren(kids, copy, depth + 1, stack);
  }
}

function findChild(parent: ParentNode, tag: string): Element | null {
  return (parent.childNodes.find((c) => 'tagName' in c && (c as Element).tagName === tag) as Element | undefined) ?? null;
}

/**
 * Filters an HTML document. Returns UTF-8 text of a new document. Throws ERR_FILTER (MAX_FILTERED_BYTES, a CSS
 * nesting beyond MAX_CSS_DEPTH, or a parser failure).
 */
export function filterHtml(input: Uint8Array | string, o: FilterOptions): string {
  checkFilterSize(input);
  const text = typeof input === 'string' ? input : decodeDocument(input);
  let doc: DefaultTreeAdapterMap['document'];
  try {
    doc = parse(text, { scriptingEnabled: false });
  } catch (e) {
    throw new ProtocolError('ERR_FILTER', `the HTML parser refused the document (${(e as Error).name})`);
  }
  const html = findChild(doc, 'html');
  const out = T.createDocument();
  T.setDocumentType(out, 'html', '', '');
  const htmlAttrs = html?.attrs.filter((a) => a.name === 'lang' && /^[A-Za-z0-9-]{1,35}$/.test(a.value)) ?? [];
  const outHtml = T.createElement(
    'html',
    H.NS.HTML,
    htmlAttrs.map((a) => ({ name: a.name, value: a.value })),
  );
  T.appendChild(out, outHtml);
  const head = T.createElement('head', H.NS.HTML, []);
  T.appendChild(outHtml, head);
  T.appendChild(head, T.createElement('meta', H.NS.HTML, [{ name: 'charset', value: 'utf-8' }]));
  const body = T.createElement('body', H.NS.HTML, []);
  T.appendChild(outHtml, body);
  const inHead = html ? findChild(html, 'head') : null;
  const inBody = html ? (findChild(html, 'body') ?? findChild(html, 'frameset')) : null;
  try {
    if (inHead) rebuild(inHead, head, o);
    if (inBody) {
      const attrs = filterAttributes('body', inBody, o) ?? [];
      for (const a of attrs) body.attrs.push(a);
      rebuild(inBody, body, o);
    }
  } catch (e) {
    if (e instanceof ProtocolError || e instanceof LimitError) throw e;
    throw new ProtocolError('ERR_FILTER', `the document could not be filtered (${(e as Error).name})`);
  }
  return serialize(out);
}
