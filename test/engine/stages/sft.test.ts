import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { testBackend, tmpDir } from '../../helpers';
import { GPT } from '../../../src/engine/model';
import { defaultConfig } from '../../../src/engine/config';
import { CharTokenizer } from '../../../src/engine/tokenizer';
import { crossEntropy } from '../../../src/engine/layers';
import { makeBatch, tokenizeExample, sft } from '../../../src/engine/stages/sft';
import { toSftExample, promptTemplate } from '../../../src/data/sft';
import { saveModel } from '../../../src/engine/checkpoint';

before(testBackend);

const tok = CharTokenizer.fromText('abcdefghijklmnopqrstuvwxyz ?.:HA\n');

test('SFT weights: prompt tokens 0, response tokens and their end-of-text 1', () => {
  const ex = toSftExample({ prompt: 'hi', response: 'yo' }, 'f', 1);
  assert.ok('segments' in ex);
  const t = tokenizeExample(ex, tok, 100);
  const p = tok.encode(promptTemplate('hi')).length;
  assert.deepEqual(t.weights, [...Array(p).fill(0), 1, 1, 1]);
  assert.equal(t.ids.at(-1), tok.eot);
  const conv = toSftExample({ messages: [{ role: 'system', content: 'be nice' }, { role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }, { role: 'user', content: 'c' }, { role: 'assistant', content: 'd' }] }, 'f', 2);
  assert.ok('segments' in conv);
  const ct = tokenizeExample(conv, tok, 1000);
  const trained = ct.ids.filter((_, i) => ct.weights[i] === 1);
  assert.deepEqual(trained, [...tok.encode('b'), tok.eot, ...tok.encode('d'), tok.eot], 'only assistant turns');
});

test('SFT: prompt tokens get exactly zero gradient', () => {
  const model = GPT.init(defaultConfig({ n_layer: 2, n_head: 2, n_embd: 16, n_positions: 64, vocab_size: tok.vocabSize }), 2);
  const ex = toSftExample({ prompt: 'what is up', response: 'the sky' }, 'f', 1);
  assert.ok('segments' in ex);
  const b = makeBatch([tokenizeExample(ex, tok, 64)], tok.eot);
  const vars = [...model.params.values()];
  const grads = (targets: Int32Array) =>
    tf.tidy(() => {
      const ids = tf.tensor2d(b.ids, [b.B, b.T], 'int32');
      const logits = model.logits(ids);
      // gradient w.r.t. the logits themselves, position by position
      const dLogits = tf.grad((l: tf.Tensor) => crossEntropy(l as tf.Tensor2D, tf.tensor1d(targets, 'int32'), tf.tensor1d(b.weights)))(logits);
      const g = tf.variableGrads(() => crossEntropy(model.logits(ids), tf.tensor1d(targets, 'int32'), tf.tensor1d(b.weights)), vars).grads;
      return { dLogits: dLogits.arraySync() as number[][], params: Object.values(g).map((x) => Array.from(x.dataSync())) };
    });
  const base = grads(b.targets);
  const promptRows = [...b.weights.keys()].filter((i) => b.weights[i] === 0);
  assert.ok(promptRows.length > 5);
  for (const i of promptRows) assert.ok(base.dLogits[i].every((x) => x === 0), `position ${i} has a non-zero gradient`);
  // Changing what the prompt positions "should" predict changes no parameter gradient at all.
  const altered = b.targets.slice();
  for (const i of promptRows) altered[i] = (altered[i] + 3) % tok.vocabSize;
  assert.deepEqual(grads(altered).params, base.params);
  model.dispose();
});

test('SFT stage trains only on responses and lowers the held-out loss', async () => {
  const root = tmpDir();
  const data = path.join(root, 'toy.sft.jsonl');
  const lines = Array.from({ length: 40 }, (_, i) => JSON.stringify({ prompt: `say ${'abc'[i % 3]}`, response: `${'abc'[i % 3]}${'abc'[i % 3]}.` }));
  fs.writeFileSync(data, lines.join('\n') + '\n');
  const model = GPT.init(defaultConfig({ n_layer: 1, n_head: 2, n_embd: 32, n_positions: 32, vocab_size: tok.vocabSize }), 3);
  await saveModel(model, tok, path.join(root, 'base'));
  model.dispose();
  const r = await sft({ data, model: path.join(root, 'base'), runsDir: path.join(root, 'runs'), runId: 'sft', train: { steps: 30, batchSize: 8, lr: 3e-3, warmupSteps: 2, evalInterval: 1 } });
  assert.equal(r.run.status, 'completed');
  const m = r.run && JSON.parse('[' + fs.readFileSync(path.join(root, 'runs', 'sft', 'metrics.jsonl'), 'utf8').trim().split('\n').join(',') + ']');
  assert.ok(m[m.length - 1]['eval/loss'] < 0.5 * m[0]['eval/loss'], `eval/loss ${m[0]['eval/loss']} -> ${m[m.length - 1]['eval/loss']}`);
  assert.ok(fs.existsSync(path.join(root, 'runs', 'sft', 'checkpoints', 'final', 'model.safetensors')));
});
