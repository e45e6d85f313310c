import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { testBackend } from '../helpers';
import { GPT } from '../../src/engine/model';
import { defaultConfig } from '../../src/engine/config';
import { generate, sampleToken } from '../../src/engine/generate';
import { Rng } from '../../src/engine/rng';

before(testBackend);

const cfg = defaultConfig({ n_layer: 2, n_head: 2, n_embd: 32, n_positions: 24, vocab_size: 40 });

test('cached generation equals uncached generation token for token under a seed', async () => {
  const model = GPT.init(cfg, 4);
  const opts = { maxNewTokens: 40, temperature: 1, topK: 0, topP: 1, seed: 11 };
  // 40 new tokens after a 5-token prompt runs past the 24-token context: the cropped path too
  const cached = await generate(model, [1, 2, 3, 4, 5], 3, { ...opts, useCache: true });
  const uncached = await generate(model, [1, 2, 3, 4, 5], 3, { ...opts, useCache: false });
  assert.deepEqual(cached.tokens, uncached.tokens);
  assert.equal(cached.tokens[0].length, 40);
  assert.notDeepEqual(cached.tokens[0], cached.tokens[1], 'samples differ from each other');
  const again = await generate(model, [1, 2, 3, 4, 5], 3, { ...opts, useCache: true });
  assert.deepEqual(again.tokens, cached.tokens, 'same seed, same tokens');
  model.dispose();
});

test('generation stops at end-of-text and leaves no tensors behind', async () => {
  const model = GPT.init(cfg, 4);
  const before = tf.memory().numTensors;
  const g = await generate(model, [1, 2], 4, { maxNewTokens: 30, temperature: 1.5, topK: 0, topP: 1, seed: 3, eot: 0 });
  assert.equal(tf.memory().numTensors, before);
  g.tokens.forEach((t, i) => {
    assert.ok(!t.includes(0));
    if (g.finished[i]) assert.ok(t.length < 30);
    else assert.equal(t.length, 30);
  });
  model.dispose();
});

test('greedy, top-k and top-p sampling keep only the allowed tokens', () => {
  const logits = new Float32Array([0, 3, 1, 2.5, -1]);
  const rng = new Rng(1);
  assert.equal(sampleToken(logits, { temperature: 0, topK: 0, topP: 1 }, rng), 1);
  const seen = new Set<number>();
  for (let i = 0; i < 500; i++) seen.add(sampleToken(logits, { temperature: 1, topK: 2, topP: 1 }, rng));
  assert.deepEqual([...seen].sort(), [1, 3]);
  // p(1) = 0.55, p(3) = 0.34: nucleus 0.5 keeps token 1 alone, 0.6 keeps 1 and 3
  seen.clear();
  for (let i = 0; i < 300; i++) seen.add(sampleToken(logits, { temperature: 1, topK: 0, topP: 0.5 }, rng));
  assert.deepEqual([...seen], [1]);
  seen.clear();
  for (let i = 0; i < 500; i++) seen.add(sampleToken(logits, { temperature: 1, topK: 0, topP: 0.6 }, rng));
  assert.deepEqual([...seen].sort(), [1, 3]);
});
