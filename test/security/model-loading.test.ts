import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { FIXTURES, ROOT, tmpDir } from '../helpers';
import { readSafetensors, serializeSafetensors } from '../../src/engine/safetensors';

const CLI = path.join(ROOT, 'dist', 'cli.js');

function folder(edit: (dir: string) => void): string {
  const dir = path.join(tmpDir(), 'model');
  fs.cpSync(path.join(FIXTURES, 'tiny-gpt2'), dir, { recursive: true });
  edit(dir);
  return dir;
}
const setConfig = (k: string, v: unknown) => (dir: string) => {
  const c = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  c[k] = v;
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(c));
};
const replaceWith = (name: string, how: 'zero' | 'fifo') => (dir: string) => {
  fs.rmSync(path.join(dir, name));
  if (how === 'zero') fs.symlinkSync('/dev/zero', path.join(dir, name));
  else execFileSync('mkfifo', [path.join(dir, name)]);
};

const cases: [string, (dir: string) => void, RegExp][] = [
  ['n_layer 1e8', setConfig('n_layer', 1e8), /"n_layer" is 100000000; it must be a whole number from 1 to 1024/],
  ['n_layer -1', setConfig('n_layer', -1), /"n_layer" is -1; it must be a whole number/],
  ['n_layer 3.5', setConfig('n_layer', 3.5), /"n_layer" is 3\.5; it must be a whole number/],
  ['n_embd not divisible by n_head', setConfig('n_embd', 31), /n_embd must be a multiple of n_head/],
  ['vocab_size far larger than the weights', setConfig('vocab_size', 4_000_000), /describes \d+(\.\d)?[MB]? parameters, but model\.safetensors has only \d+ bytes/],
  ['model.safetensors -> /dev/zero', replaceWith('model.safetensors', 'zero'), /model\.safetensors is a device, not a regular file; refused/],
  ['config.json -> /dev/zero', replaceWith('config.json', 'zero'), /config\.json is a device, not a regular file; refused/],
  ['config.json as a FIFO', replaceWith('config.json', 'fifo'), /config\.json is a FIFO, not a regular file; refused/],
  ['model.safetensors as a FIFO', replaceWith('model.safetensors', 'fifo'), /model\.safetensors is a FIFO, not a regular file; refused/],
  ['a NaN weight', (dir) => {
    const f = path.join(dir, 'model.safetensors');
    const t = readSafetensors(f).tensors;
    t.get('transformer.h.0.mlp.c_fc.weight')!.data[7] = NaN;
    fs.writeFileSync(f, serializeSafetensors(t));
  }, /h\.0\.mlp\.c_fc\.weight holds NaN at index 7; the weights are corrupt/],
];

for (const [name, edit, message] of cases) {
  test(`finding 6 as found, ${name}: one clear line, non-zero exit, fast and small`, () => {
    const dir = folder(edit);
    const t0 = Date.now();
    const r = spawnSync('/usr/bin/time', ['-q', '-f', '%M', process.execPath, CLI, 'logprobs', '--model', dir, '--text', 'hi', '--json', '--backend', 'wasm'], { encoding: 'utf8', timeout: 20_000 });
    const lines = r.stderr.trimEnd().split('\n');
    const kb = Number(lines.pop());
    assert.equal(r.signal, null, 'no hang');
    assert.notEqual(r.status, 0, r.stdout);
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], message);
    assert.doesNotMatch(r.stdout, /null/, 'no null logprobs');
    assert.ok(kb < 1024 * 1024, `${kb} KB`);
    assert.ok(Date.now() - t0 < 10_000);
  });
}
