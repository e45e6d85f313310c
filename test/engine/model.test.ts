import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { FIXTURES, testBackend } from '../helpers';
import { GPT, initialWeights } from '../../src/engine/model';
import { defaultConfig } from '../../src/engine/config';
import { crossEntropy } from '../../src/engine/layers';
import { loadModel } from '../../src/engine/checkpoint';
import { tokenLogprobs } from '../../src/engine/generate';
import { Rng } from '../../src/engine/rng';

before(testBackend);

const tiny = defaultConfig({ n_layer: 2, n_head: 2, n_embd: 8, n_positions: 8, vocab_size: 11 });

function lossOf(model: GPT, ids: tf.Tensor2D, targets: tf.Tensor1D, weights: tf.Tensor1D): number {
  return tf.tidy(() => crossEntropy(model.logits(ids), targets, weights).dataSync()[0]);
}

test('gradients of a tiny GPT match central finite differences', () => {
  // Non-trivial weights everywhere (biases and LayerNorm gains too), so every path is exercised.
  const rng = new Rng(5);
  const w = initialWeights(tiny, 3);
  for (const a of w.values()) for (let i = 0; i < a.length; i++) a[i] += 0.5 * rng.normal();
  const model = new GPT(tiny, w);
  const B = 2, T = 6;
  const ids = tf.tensor2d(Array.from({ length: B * T }, () => rng.int(11)), [B, T], 'int32');
  const targets = tf.tensor1d(Array.from({ length: B * T }, () => rng.int(11)), 'int32');
  const weights = tf.tensor1d(Array.from({ length: B * T }, (_, i) => (i % 4 === 0 ? 0 : 1)), 'float32');
  const vars = [...model.params.values()];
  const { grads } = tf.variableGrads(() => crossEntropy(model.logits(ids), targets, weights), vars);
  const eps = 1e-2;
  let checked = 0;
  for (const [name, p] of model.params) {
    const g = grads[p.name].dataSync();
    // the two largest components of this parameter's gradient
    const order = Array.from(g.keys()).sort((a, b) => Math.abs(g[b]) - Math.abs(g[a])).slice(0, 2);
    for (const i of order) {
      const base = p.dataSync().slice();
      const at = (delta: number) => {
        const v = base.slice();
        v[i] += delta;
        tf.tidy(() => p.assign(tf.tensor(v, p.shape)));
        return lossOf(model, ids, targets, weights);
      };
      const numeric = (at(eps) - at(-eps)) / (2 * eps);
      tf.tidy(() => p.assign(tf.tensor(base, p.shape)));
      assert.ok(Math.abs(numeric - g[i]) <= 5e-4 + 5e-3 * Math.abs(g[i]), `${name}[${i}]: analytic ${g[i]}, numeric ${numeric}`);
      checked++;
    }
  }
  assert.equal(checked, 2 * model.params.size);
  model.dispose();
});

test('logprobs of a GPT-2-layout checkpoint match an independent PyTorch computation', async () => {
  const dir = path.join(FIXTURES, 'tiny-gpt2');
  const expected = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8'));
  const { model, tokenizer, loaded } = loadModel(dir, false);
  assert.equal(loaded.config.tokenizer, 'gpt2', 'no "tokenizer" key means GPT-2 BPE');
  const tokens = tokenizer.encode(expected.text);
  assert.deepEqual(tokens, expected.tokens);
  const lp = await tokenLogprobs(model, tokens);
  assert.equal(lp.length, tokens.length - 1);
  lp.forEach((x, i) => assert.ok(Math.abs(x - expected.logprobs[i]) < 1e-4, `token ${i}: ${x} vs ${expected.logprobs[i]}`));
  model.dispose();
});

test('dropout changes training outputs but never evaluation outputs', () => {
  const model = GPT.init({ ...tiny, dropout: 0.5 }, 1);
  const ids = tf.tensor2d([[1, 2, 3, 4]], [1, 4], 'int32');
  const a = model.logits(ids).dataSync();
  const b = model.logits(ids).dataSync();
  const c = model.logits(ids, { training: true, rng: new Rng(1) }).dataSync();
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  model.dispose();
});

test('GPT-2 initialisation: N(0, 0.02), residual projections scaled by 1/sqrt(2 n_layer)', () => {
  const cfg = defaultConfig({ n_layer: 8, n_embd: 64, n_head: 4, vocab_size: 500 });
  const w = initialWeights(cfg, 1);
  const std = (a: Float32Array) => Math.sqrt(a.reduce((s, x) => s + x * x, 0) / a.length);
  assert.ok(Math.abs(std(w.get('wte.weight')!) - 0.02) < 0.001);
  assert.ok(Math.abs(std(w.get('h.0.mlp.c_proj.weight')!) - 0.02 / 4) < 0.0005);
  assert.ok(Math.abs(std(w.get('h.3.attn.c_proj.weight')!) - 0.02 / 4) < 0.0005);
  assert.ok(w.get('h.0.ln_1.weight')!.every((x) => x === 1));
  assert.ok(w.get('h.0.attn.c_attn.bias')!.every((x) => x === 0));
});
