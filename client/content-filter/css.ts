/**
 * The CSS filter (specs/content.md §13.3): a stylesheet, a <style> element's text or a style attribute, parsed by
 * css-tree and kept only where every node is of a kind known not to make the browser fetch anything, with every
 * url() rewritten to a gateway path (or its declaration dropped). Allow-lists, not block-lists: an unknown at-rule,
 * function or value node drops what holds it.
 */
import * as csstree from 'css-tree';
import { LimitError, ProtocolError } from '../../protocol/errors.js';
import { rewriteUrl } from './url.js';

/** Bracket nesting a stylesheet may have (specs/limits.md MAX_CSS_DEPTH): the parser recurses on it. */
export const MAX_CSS_DEPTH = 64;

const KEEP_BLOCK_AT_RULES = new Set(['media', 'supports', 'layer', 'container']);
const DECLARATION_AT_RULES = new Set(['font-face', 'page']);
const KEYFRAMES = new Set(['keyframes', '-webkit-keyframes']);

const FUNCTIONS = new Set([
  'rgb',
  'rgba',
  'hsl',
  'hsla',
  'hwb',
  'lab',
  'lch',
  'oklab',
  'oklch',
  'color',
  'color-mix',
  'calc',
  'min',
  'max',
  'clamp',
  'abs',
  'sign',
  'round',
  'mod',
  'rem',
  'linear-gradient',
  'radial-gradient',
  'conic-gradient',
  'repeating-linear-gradient',
  'repeating-radial-gradient',
  'repeating-conic-gradient',
  'translate',
  'translatex',
  'translatey',
  'translatez',
  'translate3d',
  'rotate',
  'rotatex',
  'rotatey',
  'rotatez',
  'rotate3d',
  'scale',
  'scalex',
  'scaley',
  'scalez',
  'scale3d',
  'skew',
  'skewx',
  'skewy',
  'matrix',
  'matrix3d',
  'perspective',
  'cubic-bezier',
  'steps',
  'repeat',
  'minmax',
  'fit-content',
  'counter',
  'counters',
  'attr',
  'local',
  'format',
  'blur',
  'brightness',
  'contrast',
  'drop-shadow',
  'grayscale',
  'hue-rotate',
  'invert',
  'opacity',
  'saturate',
  'sepia',
  'inset',
  'circle',
  'ellipse',
  'polygon',
  'rect',
  'xywh',
  'tech',
]);

/** Value nodes that fetch nothing by themselves. Url and Function are checked on their own. */
const VALUE_NODES = new Set([
  'Identifier',
  'Number',
  'Dimension',
  'Percentage',
  'String',
  'Hash',
  'Operator',
  'Parentheses',
  'UnicodeRange',
  'Ratio',
  'Brackets',
  'Value',
  'Comma',
  'WhiteSpace',
]);
const BLOCKED_PROPERTIES = new Set(['behavior', '-ms-behavior', '-moz-binding', 'binding']);

/** Refuses input whose brackets nest deeper than MAX_CSS_DEPTH (counted without regard to strings: errs to refusing). */
export function checkCssDepth(text: string): void {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x28 || c === 0x5b || c === 0x7b) {
      if (++depth > MAX_CSS_DEPTH) throw new LimitError('MAX_CSS_DEPTH', `CSS nested deeper than ${MAX_CSS_DEPTH}`, 'ERR_FILTER');
    } else if ((c === 0x29 || c === 0x5d || c === 0x7d) && depth > 0) depth--;
  }
}

const baseName = (name: string): string => name.toLowerCase().replace(/^-(?:webkit|moz|ms|o)-/, '');

/** Keeps a declaration value when every node in it is allowed; rewrites url()s in place. */
function valueAllowed(value: csstree.CssNode, base: URL): boolean {
  let ok = true;
  csstree.walk(value, (node) => {
    if (!ok) return;
    if (node.type === 'Url') {
      const r = rewriteUrl(node.value, base, 'resource');
      if (r === null) ok = false;
      else node.value = r;
    } else if (node.type === 'Function') {
      if (!FUNCTIONS.has(baseName(node.name)) || /\\/.test(node.name)) ok = false;
    } else if (!VALUE_NODES.has(node.type)) ok = false;
  });
  return ok;
}

function filterDeclarations(block: csstree.Block | csstree.DeclarationList, base: URL): void {
  block.children.forEach((node, item, list) => {
    if (node.type !== 'Declaration') return void list.remove(item);
    const prop = node.property.toLowerCase();
    if (prop.startsWith('--') || BLOCKED_PROPERTIES.has(prop) || /\\/.test(prop) || node.value.type === 'Raw' || !valueAllowed(node.value, base))
      list.remove(item);
  });
}

function preludeAllowed(prelude: csstree.AtrulePrelude | csstree.Raw | null): boolean {
  if (!prelude) return true;
  if (prelude.type === 'Raw') return false;
  let ok = true;
  csstree.walk(prelude, (n) => {
    if (n.type === 'Url' || n.type === 'Function' || n.type === 'Raw') ok = false;
  });
  return ok;
}

function filterRules(list: csstree.List<csstree.CssNode>, base: URL): void {
  list.forEach((node, item, l) => {
    if (node.type === 'Rule') {
      if (node.prelude.type === 'Raw') return void l.remove(item);
      filterDeclarations(node.block, base);
      return;
    }
    if (node.type === 'Atrule') {
      const name = node.name.toLowerCase();
      if (name === 'import') {
        let target: string | null = null;
        if (node.prelude && node.prelude.type === 'AtrulePrelude') {
          const first = node.prelude.children.first;
          if (first?.type === 'String') target = first.value;
          else if (first?.type === 'Url') target = first.value;
        }
        const r = target === null ? null : rewriteUrl(target, base, 'resource');
        if (r === null) return void l.remove(item);
        // Rebuilt: the URL alone (media, layer and supports conditions are dropped).
        node.prelude = { type: 'AtrulePrelude', children: new csstree.List<csstree.CssNode>().appendData({ type: 'Url', value: r }) };
        return;
      }
      if (KEEP_BLOCK_AT_RULES.has(name) && node.block && preludeAllowed(node.prelude)) return void filterRules(node.block.children, base);
      if (DECLARATION_AT_RULES.has(name) && node.block && preludeAllowed(node.prelude)) return void filterDeclarations(node.block, base);
      if (KEYFRAMES.has(name) && node.block && preludeAllowed(node.prelude)) return void filterRules(node.block.children, base);
      l.remove(item);
      return;
    }
    l.remove(item);
  });
}

/** css-tree's output with every '<' escaped, so the text can never close the element that holds it. */
function generate(ast: csstree.CssNode): string {
  return csstree.generate(ast).replace(/</g, '\\3c ');
}

function parse(text: string, context: 'stylesheet' | 'declarationList'): csstree.CssNode {
  checkCssDepth(text);
  try {
    return csstree.parse(text, {
      context,
      parseValue: true,
      parseCustomProperty: false,
      parseAtrulePrelude: true,
      parseRulePrelude: true,
      positions: false,
      onParseError: () => undefined,
    });
  } catch (e) {
    throw new ProtocolError('ERR_FILTER', `the CSS parser refused the stylesheet (${(e as Error).name})`);
  }
}

/**
 * Filters a stylesheet (a file or a <style> element). `base` is the stylesheet's own gateway URL (for a file) or
 * its document's. Throws ERR_FILTER (MAX_CSS_DEPTH, or a parser failure).
 */
export function filterCss(text: string, base: URL): string {
  const ast = parse(text, 'stylesheet');
  if (ast.type !== 'StyleSheet') return '';
  filterRules(ast.children, base);
  return generate(ast);
}

/** Filters a style attribute's declarations. Throws ERR_FILTER. */
export function filterStyleAttribute(text: string, base: URL): string {
  const ast = parse(text, 'declarationList');
  if (ast.type !== 'DeclarationList') return '';
  filterDeclarations(ast, base);
  return generate(ast);
}
