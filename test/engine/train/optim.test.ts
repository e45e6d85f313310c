import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { testBackend } from '../../helpers';
import { AdamW, clipByGlobalNorm, learningRate } from '../../../src/engine/train/optim';

before(testBackend);

test('AdamW: one step by hand, decay on 2-D weights only', () => {
  const params = new Map<string, tf.Variable>([
    ['w', tf.variable(tf.tensor2d([[1, -2]]))],
    ['b', tf.variable(tf.tensor1d([0.5]))],
  ]);
  const opt = new AdamW(params, { beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 });
  opt.step(new Map<string, tf.Tensor>([['w', tf.tensor2d([[0.5, -1]])], ['b', tf.tensor1d([2])]]), 0.01);
  // first step: mhat = g, vhat = g^2, so the update is lr * sign(g) (up to eps)
  const w = params.get('w')!.dataSync(), b = params.get('b')!.dataSync();
  assert.ok(Math.abs(w[0] - (1 * (1 - 0.01 * 0.1) - 0.01)) < 1e-6);
  assert.ok(Math.abs(w[1] - (-2 * (1 - 0.01 * 0.1) + 0.01)) < 1e-6);
  assert.ok(Math.abs(b[0] - (0.5 - 0.01)) < 1e-6, 'no weight decay on a bias');
  // second step with g = 0: m = 0.1 g0 ... worked out: mhat = 0.9*0.1*g0/(1-0.81) , vhat = 0.99*0.01*g0^2/(1-0.9801)
  opt.step(new Map<string, tf.Tensor>([['w', tf.tensor2d([[0, 0]])], ['b', tf.tensor1d([0])]]), 0.01);
  const mhat = (0.9 * 0.1 * 2) / (1 - 0.81), vhat = (0.99 * 0.01 * 4) / (1 - 0.9801);
  assert.ok(Math.abs(params.get('b')!.dataSync()[0] - (0.49 - (0.01 * mhat) / Math.sqrt(vhat))) < 1e-6);
  opt.dispose();
});

test('clipping by global norm scales every gradient by the same factor', async () => {
  const grads = new Map<string, tf.Tensor>([['a', tf.tensor1d([3, 0])], ['b', tf.tensor1d([4])]]);
  const norm = await clipByGlobalNorm(grads, 1);
  assert.ok(Math.abs(norm - 5) < 1e-6);
  assert.ok(Math.abs(grads.get('a')!.dataSync()[0] - 0.6) < 1e-5);
  assert.ok(Math.abs(grads.get('b')!.dataSync()[0] - 0.8) < 1e-5);
  const small = new Map<string, tf.Tensor>([['a', tf.tensor1d([0.3])]]);
  assert.ok(Math.abs(await clipByGlobalNorm(small, 1) - 0.3) < 1e-6);
  assert.ok(Math.abs(small.get('a')!.dataSync()[0] - 0.3) < 1e-7, 'below the limit: untouched');
});

test('learning rate: linear warmup then cosine to the minimum', () => {
  const s = { lr: 1, minLr: 0.1, warmupSteps: 10, totalSteps: 110 };
  assert.equal(learningRate(0, s), 0.1);
  assert.equal(learningRate(9, s), 1);
  assert.equal(learningRate(10, s), 1);
  assert.ok(Math.abs(learningRate(60, s) - 0.55) < 1e-12);
  assert.ok(Math.abs(learningRate(110, s) - 0.1) < 1e-12);
  assert.ok(Math.abs(learningRate(500, s) - 0.1) < 1e-12);
});
