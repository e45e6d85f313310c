/**
 * RLOO (Ahmadian et al. 2024, "Back to Basics"), as TRL's RLOOTrainer computed it: k responses per
 * prompt, the reward of each the score minus the sequence-level KL penalty,
 *   R_i = score_i - beta * sum_t (logp_t - logp_ref_t),
 * and its advantage against the mean of the other k - 1 responses to the same prompt (leave one out):
 *   A_i = R_i - (sum_j R_j - R_i) / (k - 1),   optionally whitened (std + 1e-8).
 * The loss is PPO's clipped objective at the sequence level: ratio = exp(sum logp - sum logp_old).
 */
import * as tf from '@tensorflow/tfjs-core';

/** Scores and sequence KLs of k consecutive responses per prompt to leave-one-out advantages. */
export function rlooAdvantages(scores: number[], seqKl: number[], k: number, beta: number, normalize = false): { advantages: number[]; rlhfReward: number[] } {
  if (k < 2) throw new Error('RLOO needs at least 2 responses per prompt (--num-generations >= 2): one has nobody to leave out');
  if (scores.length % k !== 0) throw new Error(`${scores.length} scores are not groups of ${k}`);
  const R = scores.map((s, i) => s - beta * seqKl[i]);
  let adv = R.map((r, i) => {
    const g = Math.floor(i / k) * k;
    const sum = R.slice(g, g + k).reduce((a, b) => a + b, 0);
    return r - (sum - r) / (k - 1);
  });
  if (normalize) {
    const m = adv.reduce((a, b) => a + b, 0) / adv.length;
    const sd = Math.sqrt(adv.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, adv.length - 1));
    adv = adv.map((a) => (a - m) / (sd + 1e-8));
  }
  return { advantages: adv, rlhfReward: R };
}

/** The sequence-level clipped loss: seqLogp, seqLogpOld, advantages [N]. */
export function rlooLoss(seqLogp: tf.Tensor1D, seqLogpOld: tf.Tensor1D, advantages: tf.Tensor1D, clip: number) {
  const ratio = tf.exp(tf.sub(seqLogp, seqLogpOld));
  const l1 = tf.mul(tf.neg(advantages), ratio);
  const l2 = tf.mul(tf.neg(advantages), tf.clipByValue(ratio, 1 - clip, 1 + clip));
  return { loss: tf.mean(tf.maximum(l1, l2)) as tf.Scalar, clipfrac: tf.mean(tf.cast(tf.greater(l2, l1), 'float32')) as tf.Scalar };
}
