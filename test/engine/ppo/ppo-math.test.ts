import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { testBackend } from '../../helpers';
import { gae, whiten } from '../../../src/engine/ppo/gae';
import { AdaptiveKl, FixedKl, klEstimate } from '../../../src/engine/ppo/kl-controller';
import { policyLoss, valueLoss } from '../../../src/engine/ppo/losses';

before(testBackend);

const close = (a: number, b: number, eps = 1e-6) => assert.ok(Math.abs(a - b) < eps, `${a} vs ${b}`);

test('GAE on a short trajectory, worked by hand (gamma 1, lambda 0.95)', () => {
  // rewards [0, 0, 1], values [0.5, 0.6, 0.7], V after the end = 0
  // delta2 = 1 - 0.7 = 0.3;      A2 = 0.3
  // delta1 = 0 + 0.7 - 0.6 = 0.1; A1 = 0.1 + 0.95 * 0.3 = 0.385
  // delta0 = 0 + 0.6 - 0.5 = 0.1; A0 = 0.1 + 0.95 * 0.385 = 0.46575
  const { advantages, returns } = gae([0, 0, 1], [0.5, 0.6, 0.7], 1, 0.95);
  [0.46575, 0.385, 0.3].forEach((x, i) => close(advantages[i], x));
  [0.96575, 0.985, 1.0].forEach((x, i) => close(returns[i], x));
  // lambda 1, gamma 1: advantages are reward-to-go minus value
  const mc = gae([1, 2, 3], [0, 0, 0], 1, 1);
  assert.deepEqual(mc.advantages, [6, 5, 3]);
});

test('whitening: zero mean, unit variance, the unbiased variance as TRL\'s masked_whiten', () => {
  const w = whiten([1, 2, 3, 4]);
  // mean 2.5, unbiased variance (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5/3 (the biased 1.25 was the defect)
  [-1.5, -0.5, 0.5, 1.5].forEach((x, i) => close(w[i], x / Math.sqrt(5 / 3 + 1e-8)));
  const kept = whiten([1, 2, 3, 4], false);
  close(kept[0], -1.5 / Math.sqrt(5 / 3 + 1e-8) + 2.5);
});

test('the clipped objective at ratios inside and outside the clip range', () => {
  // four tokens: ratio = exp(logp - logp_old) = [1.1, 1.5, 0.5, 0.7], advantages [1, 1, -1, 1], clip 0.2
  // token 0: inside: -A * r = -1.1
  // token 1: A > 0, r > 1.2: max(-1.5, -1.2) = -1.2 (clipped)
  // token 2: A < 0, r < 0.8: max(0.5, 0.8) = 0.8 (clipped)
  // token 3: A > 0, r < 0.8: max(-0.7, -0.8) = -0.7 (not clipped: pessimistic bound)
  const ratios = [1.1, 1.5, 0.5, 0.7];
  const r = tf.tidy(() => {
    const p = policyLoss(tf.tensor1d(ratios.map(Math.log)), tf.zeros([4]), tf.tensor1d([1, 1, -1, 1]), tf.ones([4]), 0.2);
    return [p.loss, p.clipfrac, p.ratio, p.approxkl].map((t) => t.dataSync()[0]);
  });
  close(r[0], (-1.1 - 1.2 + 0.8 - 0.7) / 4);
  close(r[1], 0.5);
  close(r[2], (1.1 + 1.5 + 0.5 + 0.7) / 4, 1e-5);
  close(r[3], ratios.reduce((s, x) => s + 0.5 * Math.log(x) ** 2, 0) / 4);
  // masked tokens do not count
  const masked = tf.tidy(() => policyLoss(tf.tensor1d(ratios.map(Math.log)), tf.zeros([4]), tf.tensor1d([1, 1, -1, 1]), tf.tensor1d([1, 0, 0, 0]), 0.2).loss.dataSync()[0]);
  close(masked, -1.1);
});

test('the clipped value loss', () => {
  // V_old 0, return 1: V = 0.5 -> unclipped (0.5-1)^2 = 0.25, clipped V 0.2 -> 0.64 -> max 0.64
  //                    V = 0.1 -> both 0.81
  const r = tf.tidy(() => {
    const v = valueLoss(tf.tensor1d([0.5, 0.1]), tf.zeros([2]), tf.ones([2]), tf.ones([2]), 0.2);
    return [v.loss.dataSync()[0], v.clipfrac.dataSync()[0]];
  });
  close(r[0], 0.5 * (0.64 + 0.81) / 2);
  close(r[1], 0.5);
});

test('the KL controller: fixed, and Ziegler et al.\'s adaptive update', () => {
  const f = new FixedKl(0.1);
  f.update(100, 64);
  assert.equal(f.value, 0.1);
  const a = new AdaptiveKl(0.1, 6, 10000);
  a.update(9, 256); // error = clip(9/6 - 1, -0.2, 0.2) = 0.2; beta *= 1 + 0.2 * 256 / 10000
  close(a.value, 0.1 * 1.00512);
  a.update(5.7, 100); // error = -0.05; beta *= 1 - 0.05 * 0.01
  close(a.value, 0.1 * 1.00512 * 0.9995);
  // estimators: k1 = log pi - log pi_ref; k3 = (r - 1) - log r with r = pi_ref / pi
  close(klEstimate(-1, -2, 'k1'), 1);
  close(klEstimate(-1, -2, 'k3'), Math.exp(-1) - 1 + 1);
  assert.ok(klEstimate(-2, -1, 'k3') >= 0);
});
