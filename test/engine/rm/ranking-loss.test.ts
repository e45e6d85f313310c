import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { testBackend } from '../../helpers';
import { pairStats, pairsFor, rankingLoss } from '../../../src/engine/rm/ranking-loss';

before(testBackend);

const close = (a: number, b: number, eps = 1e-6) => assert.ok(Math.abs(a - b) < eps, `${a} vs ${b}`);

test('K-way loss on a 3-response record with a tie, worked by hand', () => {
  // ranks [1, 2, 2]: response 0 beats 1 and 2; 1 and 2 tie (no pair). rewards [2, 1, 0.5]
  // loss = mean(-log sigmoid(2 - 1), -log sigmoid(2 - 0.5)) = mean(ln(1 + e^-1), ln(1 + e^-1.5))
  //      = mean(0.3132616875, 0.2014132779) = 0.2573374827
  const pairs = pairsFor([{ ranks: [1, 2, 2], flags: [] }], [0]);
  assert.deepEqual([pairs.winners, pairs.losers], [[0, 0], [1, 2]]);
  const loss = tf.tidy(() => rankingLoss(tf.tensor1d([2, 1, 0.5]), pairs).dataSync()[0]);
  close(loss, 0.2573374827);
  const s = pairStats([2, 1, 0.5], pairs);
  close(s.accuracy, 1);
  close(s.margin, 1.25);
});

test('records weigh the same whatever their number of pairs; margins and not_rankable', () => {
  // record A (K = 3, 3 pairs) at rows 0..2, record B (K = 2, 1 pair, margin 1) at rows 3..4
  const p = pairsFor([{ ranks: [1, 2, 3], flags: [] }, { ranks: [2, 1], flags: [], margin: 1 }, { ranks: [1, 2], flags: ['not_rankable'] }], [0, 3, 5]);
  assert.deepEqual(p.weights, [1 / 6, 1 / 6, 1 / 6, 1 / 2]);
  assert.deepEqual([p.winners.at(-1), p.losers.at(-1), p.margins.at(-1)], [4, 3, 1]);
  // all rewards 0: A's pairs give ln 2 each; B's pair gives -log sigmoid(0 - 1) = ln(1 + e)
  const loss = tf.tidy(() => rankingLoss(tf.zeros([7]) as tf.Tensor1D, p).dataSync()[0]);
  close(loss, 0.5 * Math.LN2 + 0.5 * Math.log(1 + Math.E), 1e-5);
});

test('the K-way loss gradient pushes winners up and losers down', () => {
  const p = pairsFor([{ ranks: [2, 1], flags: [] }], [0]);
  const g = tf.grad((r: tf.Tensor) => rankingLoss(r as tf.Tensor1D, p))(tf.tensor1d([0, 0])).dataSync();
  // d/dr1 of -log sigmoid(r1 - r0) at 0 = -0.5; d/dr0 = +0.5
  close(g[0], 0.5);
  close(g[1], -0.5);
});
