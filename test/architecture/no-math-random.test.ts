/**
 * A build check (specs/README.md §Notation): no source file in crypto/, protocol/, net/, relay/ or client/ may use
 * JavaScript's Math.random, whose state can be recovered from a few outputs. Random choices there go through the
 * crypto facade (crypto().uniform(), randomInt(), shuffle()), which tests and the simulator seed.
 *
 * The check parses every file with the TypeScript compiler rather than searching its text, so a comment naming the
 * function is allowed while every way of reaching it is not: `Math.random`, `Math['random']`, `globalThis.Math…`,
 * and any use of `Math` other than reading one of its other members by name (`const M = Math`, `{ random } = Math`,
 * `Math[key]`) are all reported.
 */
import { expect } from 'chai';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

const ROOT = join(import.meta.dirname, '..', '..');
const CHECKED = ['errors', 'crypto', 'protocol', 'net', 'relay', 'client'];

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (/\.(ts|mts|cts|tsx)$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** True for `Math` itself: the identifier, or `<anything>.Math` (globalThis.Math, window.Math). */
function isMath(node: ts.Node): boolean {
  if (ts.isIdentifier(node)) return node.text === 'Math';
  if (ts.isPropertyAccessExpression(node)) return node.name.text === 'Math';
  if (ts.isElementAccessExpression(node)) return ts.isStringLiteralLike(node.argumentExpression) && node.argumentExpression.text === 'Math';
  return false;
}

/** Uses of Math.random (or of Math in a way that could reach it) in one source text, as "line:column text". */
export function mathRandomUses(fileName: string, text: string): string[] {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, fileName.endsWith('x') ? ts.ScriptKind.TSX : ts.ScriptKind.TS);
  const found: string[] = [];
  const report = (n: ts.Node): void => {
    const { line, character } = sf.getLineAndCharacterOfPosition(n.getStart(sf));
    found.push(`${line + 1}:${character + 1} ${n.getText(sf)}`);
  };
  const visit = (n: ts.Node): void => {
    if (isMath(n)) {
      const p = n.parent;
      // A declaration's or property's own name that happens to be "Math" is no use of the global.
      const isOwnName =
        (ts.isPropertyAccessExpression(p) && p.name === n) ||
        ((ts.isPropertyAssignment(p) || ts.isPropertySignature(p) || ts.isPropertyDeclaration(p) || ts.isMethodDeclaration(p)) && p.name === n) ||
        ((ts.isVariableDeclaration(p) || ts.isParameter(p) || ts.isFunctionDeclaration(p) || ts.isClassDeclaration(p) || ts.isImportSpecifier(p)) &&
          p.name === n) ||
        ts.isTypeReferenceNode(p) ||
        ts.isQualifiedName(p);
      if (!isOwnName) {
        if (ts.isPropertyAccessExpression(p) && p.expression === n) {
          if (p.name.text === 'random') report(p);
        } else if (ts.isElementAccessExpression(p) && p.expression === n) {
          const key = p.argumentExpression;
          if (!ts.isStringLiteralLike(key) || key.text === 'random') report(p);
        } else {
          report(n); // Math passed around, aliased or destructured: it could reach random
        }
      }
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return found;
}

describe('architecture: no Math.random in crypto/, protocol/, net/, relay/, client/', () => {
  it('the check finds every way of reaching Math.random and nothing else', () => {
    const uses = (code: string): number => mathRandomUses('x.ts', code).length;
    expect(uses('const a = Math.random();')).to.equal(1);
    expect(uses("const a = Math['random']();")).to.equal(1);
    expect(uses('const a = globalThis.Math.random();')).to.equal(1);
    expect(uses('const { random } = Math;')).to.equal(1);
    expect(uses('const M = Math; M.random();')).to.equal(1);
    expect(uses('const k = "random"; Math[k]();')).to.equal(1);
    expect(uses('list.sort(() => Math.random() - 0.5);')).to.equal(1);
    expect(uses('// Math.random is banned\n/* Math.random */ const s = "Math.random"; const n = Math.floor(Math.max(1, 2));')).to.equal(0);
    expect(uses('interface I { Math: number } const o: I = { Math: 1 }; class C { Math = 2 }')).to.equal(0);
    // Conservative: a member or a shadowing variable called Math is read as the global might be, and reported.
    expect(uses('o.Math; function f(Math: number) { return Math; }')).to.equal(2);
  });

  it('no source file uses it', () => {
    const offenders: string[] = [];
    for (const dir of CHECKED) {
      for (const file of sourceFiles(join(ROOT, dir))) {
        for (const use of mathRandomUses(file, readFileSync(file, 'utf8'))) offenders.push(`${relative(ROOT, file)}:${use}`);
      }
    }
    expect(offenders, 'use crypto().uniform(), randomInt() or shuffle() (crypto/index.ts) instead').to.deep.equal([]);
  });
});
