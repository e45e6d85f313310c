// GRPO and RLOO advantages and losses against TRL's formulas, written out here loop by loop from
// TRL's GRPOTrainer (_compute_loss, _generate_and_score_completions) and RLOOTrainer (train), on
// random inputs.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { testBackend } from '../../helpers';
import { Rng } from '../../../src/engine/rng';
import { GrpoLossType, ScaleRewards, groupAdvantages, grpoLoss } from '../../../src/engine/grpo/math';
import { rlooAdvantages, rlooLoss } from '../../../src/engine/rloo/math';

before(testBackend);

const close = (a: number, b: number, eps = 1e-5) => assert.ok(Math.abs(a - b) <= eps * Math.max(1, Math.abs(b)), `${a} vs ${b}`);
const torchStd = (a: number[]) => {
  const m = a.reduce((s, x) => s + x, 0) / a.length;
  return Math.sqrt(a.reduce((s, x) => s + (x - m) ** 2, 0) / (a.length - 1));
};

test('GRPO advantages equal TRL\'s (group, batch and no scaling; std unbiased; + 1e-4)', () => {
  const rng = new Rng(11);
  const G = 4, rewards = Array.from({ length: 12 }, () => rng.normal() * 2 + 1);
  rewards.splice(4, 4, 0.5, 0.5, 0.5, 0.5); // a group with zero std
  for (const scale of ['group', 'batch', 'none'] as ScaleRewards[]) {
    const got = groupAdvantages(rewards, G, scale);
    rewards.forEach((r, i) => {
      const grp = rewards.slice(Math.floor(i / G) * G, Math.floor(i / G) * G + G);
      const m = grp.reduce((s, x) => s + x, 0) / G;
      const want = scale === 'group' ? (r - m) / (torchStd(grp) + 1e-4) : scale === 'batch' ? (r - m) / (torchStd(rewards) + 1e-4) : r - m;
      close(got.advantages[i], want);
    });
    close(got.frac_reward_zero_std, 1 / 3);
    close(got.reward_std, [0, 1, 2].map((g) => torchStd(rewards.slice(g * G, g * G + G))).reduce((a, b) => a + b) / 3);
  }
  assert.throws(() => groupAdvantages([1, 2], 1, 'group'), /at least 2 responses per prompt/);
});

test('GRPO loss equals TRL\'s per-token objective and each loss_type\'s aggregation, KL by k3', () => {
  const rng = new Rng(5);
  const N = 6, T = 7;
  const lp = Array.from({ length: N * T }, () => -Math.abs(rng.normal()) - 0.1);
  const old = lp.map((x) => x + rng.normal() * 0.3);
  const ref = lp.map((x) => x + rng.normal() * 0.5);
  const A = Array.from({ length: N }, () => rng.normal());
  const len = Array.from({ length: N }, () => 1 + rng.int(T));
  const mask: number[] = Array.from({ length: N * T }, (_, k) => (k % T < len[Math.floor(k / T)] ? 1 : 0));
  const cfgBase = { epsLow: 0.2, epsHigh: 0.28, beta: 0.04 };
  // TRL, written out
  const per = lp.map((x, k) => {
    const a = A[Math.floor(k / T)];
    const c1 = Math.exp(x - old[k]);
    const c2 = Math.min(Math.max(c1, 1 - cfgBase.epsLow), 1 + cfgBase.epsHigh);
    const d = ref[k] - x;
    return -Math.min(c1 * a, c2 * a) + cfgBase.beta * (Math.exp(d) - d - 1);
  });
  const tokens = mask.reduce((a, b) => a + b, 0);
  const sum = per.reduce((s, x, k) => s + x * mask[k], 0);
  const want: Record<GrpoLossType, number> = {
    dapo: sum / 100, // num_items_in_batch: the tokens of the whole generation batch (here said to be 100)
    bnpo: sum / tokens,
    dr_grpo: sum / (N * 16),
    grpo: Array.from({ length: N }, (_, n) => per.slice(n * T, n * T + T).reduce((s, x, t) => s + x * mask[n * T + t], 0) / len[n]).reduce((a, b) => a + b) / N,
  };
  const t2 = (a: number[]) => tf.tensor2d(a, [N, T]);
  for (const lossType of ['dapo', 'bnpo', 'dr_grpo', 'grpo'] as GrpoLossType[]) {
    const r = grpoLoss(t2(lp), t2(old), t2(ref), tf.tensor1d(A), t2(mask), { ...cfgBase, lossType, numItems: 100, maxCompletionLength: 16 });
    close(r.loss.dataSync()[0], want[lossType]);
  }
  // diagnostics: the mean k3 KL and the clipped region over completion tokens
  const r = grpoLoss(t2(lp), t2(old), t2(ref), tf.tensor1d(A), t2(mask), { ...cfgBase, lossType: 'bnpo' });
  close(r.kl!.dataSync()[0], lp.reduce((s, x, k) => s + mask[k] * (Math.exp(ref[k] - x) - (ref[k] - x) - 1), 0) / tokens);
  const region = lp.reduce((s, x, k) => {
    const c1 = Math.exp(x - old[k]), a = A[Math.floor(k / T)];
    return s + mask[k] * ((c1 < 1 - cfgBase.epsLow && a < 0) || (c1 > 1 + cfgBase.epsHigh && a > 0) ? 1 : 0);
  }, 0);
  close(r.clipRegion.dataSync()[0], region / tokens);
  // beta 0: no KL term, no reference needed
  const noRef = grpoLoss(t2(lp), t2(old), undefined, tf.tensor1d(A), t2(mask), { ...cfgBase, beta: 0, lossType: 'bnpo' });
  close(noRef.loss.dataSync()[0], lp.reduce((s, x, k) => {
    const a = A[Math.floor(k / T)], c1 = Math.exp(x - old[k]), c2 = Math.min(Math.max(c1, 0.8), 1.28);
    return s + mask[k] * -Math.min(c1 * a, c2 * a);
  }, 0) / tokens);
});

test('RLOO advantages (leave-one-out baseline, sequence-level KL in the reward) and loss equal TRL\'s', () => {
  const rng = new Rng(9);
  const k = 4, B = 3;
  const scores = Array.from({ length: k * B }, () => rng.normal());
  const kl = Array.from({ length: k * B }, () => Math.abs(rng.normal()) * 3);
  const beta = 0.05;
  for (const normalize of [false, true]) {
    const got = rlooAdvantages(scores, kl, k, beta, normalize);
    let want = scores.map((s, i) => {
      const g = Math.floor(i / k) * k;
      const R = (j: number) => scores[j] - beta * kl[j];
      let others = 0;
      for (let j = g; j < g + k; j++) if (j !== i) others += R(j);
      return R(i) - others / (k - 1);
    });
    if (normalize) {
      const m = want.reduce((a, b) => a + b) / want.length;
      want = want.map((a) => (a - m) / (torchStd(want) + 1e-8));
    }
    want.forEach((w, i) => close(got.advantages[i], w));
  }
  const seq = Array.from({ length: 6 }, () => rng.normal() - 5);
  const seqOld = seq.map((x) => x + rng.normal() * 0.4);
  const A = Array.from({ length: 6 }, () => rng.normal());
  const r = rlooLoss(tf.tensor1d(seq), tf.tensor1d(seqOld), tf.tensor1d(A), 0.2);
  const want = seq.map((x, i) => {
    const ratio = Math.exp(x - seqOld[i]);
    return Math.max(-A[i] * ratio, -A[i] * Math.min(Math.max(ratio, 0.8), 1.2));
  }).reduce((a, b) => a + b) / 6;
  close(r.loss.dataSync()[0], want);
  assert.throws(() => rlooAdvantages([1], [0], 1, 0.1), /at least 2 responses per prompt/);
});
