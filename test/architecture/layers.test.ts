/**
 * The layers point one way (README "Architecture"): src/data and src/engine never import the
 * editor; src/data never imports the engine; the extension host never reaches TensorFlow.js, even
 * through a module it imports; the trainer, its data parallelism and the gradient thread import
 * each other in one direction only. Read from the sources' import statements.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { ROOT } from '../helpers';

const SRC = path.join(ROOT, 'src');

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return /\.ts$/.test(e.name) && !/\.d\.ts$/.test(e.name) ? [p] : [];
  });
}

/** Each source file's imports: relative ones resolved to files, packages by name. Type-only imports count: they are still a dependency of the design. */
function imports(file: string): { files: string[]; packages: string[] } {
  const text = fs.readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+'([^']+)'/gms), ...text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g), ...text.matchAll(/\brequire\(\s*'([^']+)'\s*\)/g)].map((m) => m[1]);
  const files: string[] = [], packages: string[] = [];
  for (const s of specs) {
    if (!s.startsWith('.')) {
      packages.push(s);
      continue;
    }
    const base = path.resolve(path.dirname(file), s);
    const hit = [`${base}.ts`, path.join(base, 'index.ts')].find((f) => fs.existsSync(f));
    if (hit) files.push(hit);
  }
  return { files, packages };
}

const all = sources(SRC).filter((f) => !f.includes(`${path.sep}kernels${path.sep}assembly${path.sep}`)); // AssemblyScript, not TypeScript for Node
const graph = new Map(all.map((f) => [f, imports(f)]));
const rel = (f: string) => path.relative(ROOT, f);
const under = (f: string, dir: string) => f.startsWith(path.join(SRC, dir) + path.sep);

test('src/data and src/engine never import the editor; src/data never imports the engine or the host', () => {
  const bad: string[] = [];
  for (const [f, { files, packages }] of graph) {
    if ((under(f, 'data') || under(f, 'engine')) && packages.includes('vscode')) bad.push(`${rel(f)} imports vscode`);
    if (under(f, 'data')) for (const g of files) if (under(g, 'engine') || under(g, 'host')) bad.push(`${rel(f)} imports ${rel(g)}`);
    if (under(f, 'engine')) for (const g of files) if (under(g, 'host')) bad.push(`${rel(f)} imports ${rel(g)}`);
  }
  assert.deepEqual(bad, []);
});

test('the extension host never reaches TensorFlow.js, directly or through what it imports', () => {
  const start = [path.join(SRC, 'extension.ts'), ...all.filter((f) => under(f, 'host'))];
  const via = new Map<string, string>(start.map((f) => [f, '']));
  const queue = [...start];
  const bad: string[] = [];
  while (queue.length) {
    const f = queue.shift()!;
    const { files, packages } = graph.get(f) ?? { files: [], packages: [] };
    const tf = packages.find((p) => p.startsWith('@tensorflow/'));
    if (tf) {
      const chain = [f];
      for (let g = via.get(f); g; g = via.get(g)) chain.unshift(g);
      bad.push(`${chain.map(rel).join(' -> ')} imports ${tf}`);
    }
    for (const g of files) if (!via.has(g)) via.set(g, f), queue.push(g);
  }
  assert.deepEqual(bad, []);
});

test('the trainer, its data parallelism and the gradient thread import each other in one direction only', () => {
  const train = all.filter((f) => under(f, path.join('engine', 'train')));
  const cycles: string[] = [];
  const visit = (f: string, stack: string[]) => {
    const at = stack.indexOf(f);
    if (at >= 0) return void cycles.push([...stack.slice(at), f].map((x) => path.basename(x)).join(' -> '));
    for (const g of graph.get(f)!.files) if (train.includes(g)) visit(g, [...stack, f]);
  };
  for (const f of train) visit(f, []);
  assert.deepEqual([...new Set(cycles)], []);
});
