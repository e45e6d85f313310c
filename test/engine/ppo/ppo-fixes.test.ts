// The PPO defects found by the review against TRL (issue "Beyond PPO"), each with a test that fails
// when its fix is taken out.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { testBackend, tmpDir } from '../../helpers';
import { policyLoss } from '../../../src/engine/ppo/losses';
import { klEstimate, sequenceKl } from '../../../src/engine/ppo/kl-controller';
import { normaliseScore, tokenLogps } from '../../../src/engine/stages/ppo';
import { GPT } from '../../../src/engine/model';
import { defaultConfig } from '../../../src/engine/config';
import { CharTokenizer } from '../../../src/engine/tokenizer';
import { readModelDir } from '../../../src/engine/checkpoint';
import { RewardModel } from '../../../src/engine/rm/reward-model';

before(testBackend);

const close = (a: number, b: number, eps = 1e-5) => assert.ok(Math.abs(a - b) < eps, `${a} vs ${b}`);

test('the critic starts in normalised units: its first value estimate of a full response is the normalised reward-model score', async () => {
  const tok = CharTokenizer.fromText('abcdefgh ');
  const cfg = defaultConfig({ n_layer: 1, n_head: 2, n_embd: 16, n_positions: 16, vocab_size: tok.vocabSize });
  const rm = new RewardModel(GPT.init(cfg, 3), Float32Array.from({ length: 16 }, (_, i) => Math.sin(i)), Float32Array.of(0.3), false);
  const dir = path.join(tmpDir(), 'rm');
  const stats = { mean: 2, std: 1.5 };
  await rm.write(dir, tok, { reward_mean: stats.mean, reward_std: stats.std });
  rm.dispose();
  const loaded = readModelDir(dir);
  const scorer = RewardModel.fromLoaded(loaded, false);
  const critic = RewardModel.fromLoaded(loaded, true, 1, stats);
  const ids = tf.tensor2d([[1, 2, 3, 4, 5, 0], [2, 2, 6, 7, 1, 0]], [2, 6], 'int32');
  const scores = await scorer.rewards(ids, [5, 5]).data();
  const values = await critic.values(ids).data();
  for (let n = 0; n < 2; n++) close(values[n * 6 + 5], normaliseScore(scores[n], stats));
  // and the scores are not already near it: without the fold the offset is there
  assert.ok(Math.abs(scores[0] - normaliseScore(scores[0], stats)) > 0.5);
  scorer.dispose();
  critic.dispose();
});

test('log-probabilities divide the logits by the sampling temperature, as the sampler does', async () => {
  const model = GPT.init(defaultConfig({ n_layer: 1, n_head: 2, n_embd: 16, n_positions: 8, vocab_size: 11 }), 4);
  const ids = tf.tensor2d([[1, 5, 3, 9]], [1, 4], 'int32');
  for (const T of [1, 0.5, 1.7]) {
    const got = await tokenLogps(model, ids, false, T).logp.data();
    const want = await tf.tidy(() => tf.logSoftmax(tf.div(model.logits(ids), T))).data(); // [4, 11]
    [5, 3, 9].forEach((next, t) => close(got[t], want[t * 11 + next]));
    // the no-gradient path gathers the next token's value; the training path picks it with a one-hot: the same bits
    const picked = await tokenLogps(model, ids, true, T).logp.data();
    assert.deepEqual(Array.from(got), Array.from(picked));
  }
  model.dispose();
});

test('a masked position with an extreme log-ratio does not turn the policy loss into NaN', async () => {
  const logp = tf.tensor2d([[-1, -2, 500]]);
  const logpOld = tf.tensor2d([[-1.1, -1.9, -500]]);
  const adv = tf.tensor2d([[1, -1, 1]]);
  const withPad = policyLoss(logp, logpOld, adv, tf.tensor2d([[1, 1, 0]]), 0.2);
  const without = policyLoss(tf.tensor2d([[-1, -2]]), tf.tensor2d([[-1.1, -1.9]]), tf.tensor2d([[1, -1]]), tf.tensor2d([[1, 1]]), 0.2);
  const [a, b] = [(await withPad.loss.data())[0], (await without.loss.data())[0]];
  assert.ok(Number.isFinite(a), `loss ${a}`);
  close(a, b);
  close((await withPad.ratio.data())[0], (await without.ratio.data())[0]);
});

test('objective/kl is the estimator the penalty uses (k3 here), not always the log-ratio', () => {
  const logp = [-1, -0.5, -2, -0.1], ref = [-1.2, -0.4, -3, -0.1];
  const k3 = sequenceKl(logp, ref, [0, 1, 2], 'k3');
  close(k3, [0, 1, 2].reduce((s, k) => s + klEstimate(logp[k], ref[k], 'k3'), 0));
  const k1 = sequenceKl(logp, ref, [0, 1, 2], 'k1');
  close(k1, (-1 + 1.2) + (-0.5 + 0.4) + (-2 + 3));
  assert.ok(Math.abs(k3 - k1) > 0.1, 'the two estimators differ on these numbers');
});

test('a standard deviation divides with an epsilon: a degenerate reward std gives finite scores', () => {
  assert.ok(Number.isFinite(normaliseScore(3, { mean: 3, std: 0 })));
  assert.ok(Number.isFinite(normaliseScore(3.5, { mean: 3, std: 1e-320 })));
  close(normaliseScore(5, { mean: 2, std: 1.5 }), 2, 1e-6);
});
