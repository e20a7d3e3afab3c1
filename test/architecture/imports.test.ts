/**
 * The direction of imports (README "The map of the code"; STYLE "The house"):
 *
 *     errors ← crypto ← protocol ← net ← relay | client ← cli
 *
 * A module imports only from its own folder and the folders to its left; relay/ and client/ never import each other
 * (what both need moves down into protocol/ or net/). protocol/ is pure: no sockets, timers, clocks, files or
 * randomness of its own (node: built-ins are refused there, and Math.random everywhere — no-math-random.test.ts).
 * Imports are read with the TypeScript parser, so comments and strings do not count and type-only imports do.
 */
import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, normalize, relative, resolve } from 'node:path';
import ts from 'typescript';

const ROOT = resolve(import.meta.dirname, '..', '..');
const LAYER: Record<string, number> = { errors: 0, crypto: 1, protocol: 2, net: 3, relay: 4, client: 4, cli: 5 };

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Every module specifier a file imports or re-exports (static and dynamic). */
export function importsOf(file: string): string[] {
  const sf = ts.createSourceFile(file, readFileSync(join(ROOT, file), 'utf8'), ts.ScriptTarget.ES2022, true);
  const out: string[] = [];
  const visit = (n: ts.Node): void => {
    if ((ts.isImportDeclaration(n) || ts.isExportDeclaration(n)) && n.moduleSpecifier && ts.isStringLiteral(n.moduleSpecifier))
      out.push(n.moduleSpecifier.text);
    if (ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.ImportKeyword && n.arguments[0] && ts.isStringLiteral(n.arguments[0]))
      out.push(n.arguments[0].text);
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

/** The top folder a relative import lands in, or null for a package or built-in. */
function folderOf(file: string, spec: string): string | null {
  if (!spec.startsWith('.')) return null;
  return normalize(relative(ROOT, join(ROOT, dirname(file), spec))).split(/[\\/]/)[0]!;
}

describe('architecture: imports run one way', () => {
  const files = Object.keys(LAYER).flatMap(sources);

  it('every layer exists and has modules', () => {
    for (const layer of Object.keys(LAYER))
      expect(
        files.some((f) => f.startsWith(`${layer}/`)),
        layer,
      ).to.equal(true);
  });

  it('no module imports from a layer above it, and relay/ and client/ never import each other', () => {
    const wrong: string[] = [];
    for (const f of files) {
      const own = f.split(/[\\/]/)[0]!;
      for (const spec of importsOf(f)) {
        const to = folderOf(f, spec);
        if (to === null || to === own) continue;
        if (!(to in LAYER)) wrong.push(`${f} → ${spec} (outside the layers)`);
        else if (LAYER[to]! >= LAYER[own]!) wrong.push(`${f} → ${spec}`);
      }
    }
    expect(wrong).to.deep.equal([]);
  });

  it('errors/ imports nothing, and protocol/ uses no Node built-in (it is pure)', () => {
    const wrong: string[] = [];
    for (const f of files) {
      if (f.startsWith('errors/') && importsOf(f).length) wrong.push(`${f}: ${importsOf(f).join(', ')}`);
      if (f.startsWith('protocol/')) for (const s of importsOf(f)) if (s.startsWith('node:')) wrong.push(`${f} → ${s}`);
    }
    expect(wrong).to.deep.equal([]);
  });

  it('the check sees a wrong import (a protocol module importing from relay/)', () => {
    expect(folderOf('protocol/x.ts', '../relay/relay.js')).to.equal('relay');
    expect(LAYER['relay']! >= LAYER['protocol']!).to.equal(true);
  });
});

describe('architecture: no import cycles', () => {
  it('no module reaches itself through its imports (so every module can be read and tested from below)', () => {
    const files = Object.keys(LAYER).flatMap(sources);
    const graph = new Map<string, string[]>();
    for (const f of files) {
      graph.set(
        f,
        importsOf(f)
          .filter((s) => s.startsWith('.'))
          .map((s) => normalize(relative(ROOT, join(ROOT, dirname(f), s))).replace(/\.js$/, '.ts')),
      );
    }
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const visit = (f: string): void => {
      state.set(f, 'open');
      stack.push(f);
      for (const g of graph.get(f) ?? []) {
        if (!graph.has(g)) continue;
        if (state.get(g) === 'open') cycles.push([...stack.slice(stack.indexOf(g)), g].join(' → '));
        else if (!state.has(g)) visit(g);
      }
      stack.pop();
      state.set(f, 'done');
    };
    for (const f of files) if (!state.has(f)) visit(f);
    expect(cycles).to.deep.equal([]);
  });
});

/** Modules scripts/build-browser.ts replaces in the bundle (by a stub), so their own imports never go in. */
const REPLACED_IN_BROWSER = new Set(['crypto/binding-native.ts']);

/** Every module specifier a file imports at run time (whole `import type` / `export type` declarations are erased). */
function runtimeImportsOf(file: string): string[] {
  const sf = ts.createSourceFile(file, readFileSync(join(ROOT, file), 'utf8'), ts.ScriptTarget.ES2022, true);
  const out: string[] = [];
  const visit = (n: ts.Node): void => {
    if (ts.isImportDeclaration(n) && ts.isStringLiteral(n.moduleSpecifier) && !n.importClause?.isTypeOnly) out.push(n.moduleSpecifier.text);
    if (ts.isExportDeclaration(n) && n.moduleSpecifier && ts.isStringLiteral(n.moduleSpecifier) && !n.isTypeOnly) out.push(n.moduleSpecifier.text);
    if (ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.ImportKeyword && n.arguments[0] && ts.isStringLiteral(n.arguments[0]))
      out.push(n.arguments[0].text);
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

/**
 * The Node built-ins reached from `entry` through our own modules (packages are the bundler's business), each with
 * the chain of imports that reaches it. `imports` reads a file's imports (injectable, so the check can be tested).
 */
export function nodeImportsReachedFrom(entry: string, imports: (file: string) => string[] = runtimeImportsOf): string[] {
  const found: string[] = [];
  const seen = new Set<string>([entry]);
  const queue: { file: string; chain: string[] }[] = [{ file: entry, chain: [entry] }];
  while (queue.length) {
    const { file, chain } = queue.shift()!;
    if (REPLACED_IN_BROWSER.has(file)) continue;
    for (const spec of imports(file)) {
      if (spec.startsWith('node:') || builtinModules.includes(spec)) found.push([...chain, spec].join(' → '));
      if (!spec.startsWith('.')) continue;
      const next = normalize(relative(ROOT, join(ROOT, dirname(file), spec))).replace(/\.js$/, '.ts');
      if (seen.has(next)) continue;
      seen.add(next);
      queue.push({ file: next, chain: [...chain, next] });
    }
  }
  return found;
}

describe('architecture: the browser bundle carries no Node built-in', () => {
  it('nothing client/browser.ts imports, however deep, imports a node:* module (hidden services get an injected connector)', () => {
    expect(nodeImportsReachedFrom('client/browser.ts')).to.deep.equal([]);
  });

  it('the browser path includes the messaging folder (so the check covers it)', () => {
    const reached: string[] = [];
    nodeImportsReachedFrom('client/browser.ts', (f) => (reached.push(f), runtimeImportsOf(f)));
    expect(reached).to.include.members(['client/messaging/index.ts', 'client/messaging/messenger.ts', 'client/messaging/service.ts']);
    expect(reached).not.to.include('client/messaging/tcp-connector.ts');
  });

  it('the check sees node:net imported by client/messaging/service.ts from the browser path', () => {
    const withNet = (f: string): string[] => [...runtimeImportsOf(f), ...(f === 'client/messaging/service.ts' ? ['node:net'] : [])];
    const found = nodeImportsReachedFrom('client/browser.ts', withNet);
    expect(found).to.have.length(1);
    expect(found[0]).to.match(/^client\/browser\.ts → .*client\/messaging\/service\.ts → node:net$/);
  });

  it('the Node entry, client/index.ts, does reach node:net (through client/messaging/tcp-connector.ts)', () => {
    expect(nodeImportsReachedFrom('client/index.ts').some((c) => c.endsWith('client/messaging/tcp-connector.ts → node:net'))).to.equal(true);
  });
});

/** Our modules `entry` loads when it loads (static run-time imports only: `import()` waits until the code needs it). */
export function loadedWith(entry: string): Set<string> {
  const seen = new Set<string>([entry]);
  const queue = [entry];
  while (queue.length) {
    const file = queue.shift()!;
    const sf = ts.createSourceFile(file, readFileSync(join(ROOT, file), 'utf8'), ts.ScriptTarget.ES2022, true);
    for (const n of sf.statements) {
      const spec = (ts.isImportDeclaration(n) && !n.importClause?.isTypeOnly) || (ts.isExportDeclaration(n) && !n.isTypeOnly) ? n.moduleSpecifier : undefined;
      if (!spec || !ts.isStringLiteral(spec) || !spec.text.startsWith('.')) continue;
      const next = normalize(relative(ROOT, join(ROOT, dirname(file), spec.text))).replace(/\.js$/, '.ts');
      if (seen.has(next)) continue;
      seen.add(next);
      queue.push(next);
    }
  }
  return seen;
}

describe('architecture: a relay process loads only what it runs (its resident memory)', () => {
  const relay = loadedWith('cli/program.ts');

  it("the entry loads nothing before it has sized a relay's young generation (cli/allium.ts, cli/young-generation.ts)", () => {
    expect([...loadedWith('cli/allium.ts')].sort()).to.deep.equal(['cli/allium.ts', 'cli/young-generation.ts']);
  });

  it('the command line loads no client, content or site code until a client command runs', () => {
    expect([...relay].filter((f) => f.startsWith('client/') || f === 'cli/site-commands.ts' || f === 'cli/client-session.ts')).to.deep.equal([]);
  });

  it('the status page loads only on a relay that serves it (admin set)', () => {
    expect(loadedWith('cli/relay-command.ts')).to.include('relay/relay.ts').and.not.include('relay/admin.ts');
  });

  it('the check follows static imports and not import(): the client command reaches client code only through import()', () => {
    expect(loadedWith('cli/client-session.ts')).to.include('client/client.ts');
    expect(relay).to.include('cli/program.ts').and.not.include('cli/relay-command.ts');
  });
});
