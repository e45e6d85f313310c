import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { testBackend, tmpDir } from '../helpers';
import { GPT } from '../../src/engine/model';
import { defaultConfig } from '../../src/engine/config';
import { CharTokenizer } from '../../src/engine/tokenizer';
import { loadModel, readModelDir, saveModel, ModelDirError } from '../../src/engine/checkpoint';

before(testBackend);

test('a checkpoint round-trips bit-exactly, tokenizer included', async () => {
  const tok = CharTokenizer.fromText('the quick brown fox');
  const model = GPT.init(defaultConfig({ n_layer: 2, n_head: 2, n_embd: 16, n_positions: 16, vocab_size: tok.vocabSize }), 9);
  const dir = path.join(tmpDir(), 'm');
  await saveModel(model, tok, dir);
  const { model: back, tokenizer } = loadModel(dir);
  const a = await model.weights(), b = await back.weights();
  for (const [name, w] of a) assert.deepEqual(Buffer.from(b.get(name)!.buffer), Buffer.from(w.buffer), name);
  assert.deepEqual(tokenizer.encode('fox'), tok.encode('fox'));
  // saving the loaded model again gives the same bytes
  const dir2 = path.join(tmpDir(), 'm');
  await saveModel(back, tokenizer, dir2);
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json']) {
    assert.ok(fs.readFileSync(path.join(dir, f)).equals(fs.readFileSync(path.join(dir2, f))), f);
  }
  assert.deepEqual(fs.readdirSync(path.dirname(dir)), ['m'], 'no temporary folder left behind');
  model.dispose();
  back.dispose();
});

test('missing, corrupt and mismatched model directories are clear errors', async () => {
  const root = tmpDir();
  assert.throws(() => readModelDir(path.join(root, 'nope')), /model directory not found/);
  fs.mkdirSync(path.join(root, 'empty'));
  assert.throws(() => readModelDir(path.join(root, 'empty')), /no config.json/);
  const tok = CharTokenizer.fromText('ab');
  const model = GPT.init(defaultConfig({ n_layer: 1, n_head: 1, n_embd: 4, n_positions: 4, vocab_size: tok.vocabSize }), 1);
  const dir = path.join(root, 'm');
  await saveModel(model, tok, dir);
  model.dispose();
  const st = path.join(dir, 'model.safetensors');
  const good = fs.readFileSync(st);
  fs.writeFileSync(st, good.subarray(0, good.length - 10));
  assert.throws(() => readModelDir(dir), ModelDirError);
  fs.writeFileSync(st, good);
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...cfg, n_embd: 8 }));
  assert.throws(() => readModelDir(dir), /shape/);
  fs.writeFileSync(path.join(dir, 'config.json'), '{oops');
  assert.throws(() => readModelDir(dir), /not valid JSON/);
});
