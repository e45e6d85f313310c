import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { FIXTURES, ROOT, tmpDir } from '../helpers';

const CLI = path.join(ROOT, 'dist', 'cli.js');

/** A node_modules package that leaves a mark when it is loaded. */
function plant(root: string, pkg: string, mark: string) {
  const dir = path.join(root, 'node_modules', pkg);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: pkg, main: 'index.js' }));
  fs.writeFileSync(path.join(dir, 'index.js'), `require('fs').appendFileSync(${JSON.stringify(mark)}, ${JSON.stringify(pkg)} + '\\n');`);
}

test('a node_modules in the workspace or a parent folder is never loaded by the auto backend', () => {
  const parent = tmpDir();
  const ws = path.join(parent, 'workspace');
  fs.mkdirSync(ws);
  const mark = path.join(parent, 'pwned.txt');
  for (const root of [ws, parent]) for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) plant(root, pkg, mark);
  const r = spawnSync(process.execPath, [CLI, 'logprobs', '--model', path.join(FIXTURES, 'tiny-gpt2'), '--text', 'hi', '--backend', 'auto', '--json'], { cwd: ws, encoding: 'utf8', env: { ...process.env, RLHF_NATIVE_MODULES: '' } });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(!fs.existsSync(mark), `workspace code ran: ${fs.existsSync(mark) ? fs.readFileSync(mark, 'utf8') : ''}`);
  // an explicitly named folder (the extension's global storage) is used: the package loads from there
  const storage = path.join(parent, 'storage');
  plant(storage, '@tensorflow/tfjs-node-gpu', mark);
  spawnSync(process.execPath, [CLI, 'logprobs', '--model', path.join(FIXTURES, 'tiny-gpt2'), '--text', 'hi', '--backend', 'auto', '--json'], { cwd: ws, encoding: 'utf8', env: { ...process.env, RLHF_NATIVE_MODULES: path.join(storage, 'node_modules') } });
  assert.equal(fs.readFileSync(mark, 'utf8'), '@tensorflow/tfjs-node-gpu\n', 'only the named folder was used');
});
