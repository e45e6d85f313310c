/**
 * GRPO's advantages and loss (Shao et al. 2024, DeepSeekMath), as TRL's GRPOTrainer computes them.
 * G responses per prompt (a group), one reward each:
 *   A_i = r_i - mean(group)                       scale_rewards "none"
 *   A_i = (r_i - mean(group)) / (std(group) + 1e-4)   "group" (TRL's default)
 *   A_i = (r_i - mean(group)) / (std(batch) + 1e-4)   "batch"
 * (std unbiased, n - 1, as torch's default). Every token of response i gets A_i. Per token:
 *   ratio = exp(logp - logp_old),   l = -min(ratio A, clip(ratio, 1 - eps_low, 1 + eps_high) A)
 *   + beta * (exp(ref - logp) - (ref - logp) - 1)       the k3 estimate of KL(pi || ref), if beta > 0
 * and the token losses are aggregated by loss_type:
 *   "dapo" (TRL's default)  sum over all tokens / the tokens of the whole generation batch
 *   "grpo"                  the mean over responses of each response's mean over its tokens
 *   "bnpo"                  sum over the tokens / the tokens of this batch
 *   "dr_grpo"               sum over the tokens / (responses x max completion length)
 */
import * as tf from '@tensorflow/tfjs-core';

export type ScaleRewards = 'group' | 'batch' | 'none';
export type GrpoLossType = 'dapo' | 'grpo' | 'bnpo' | 'dr_grpo';

const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
/** Unbiased standard deviation (n - 1), 0 for one value. */
export const stdUnbiased = (a: number[]) => (a.length > 1 ? Math.sqrt(a.reduce((s, x) => s + (x - mean(a)) ** 2, 0) / (a.length - 1)) : 0);

export interface GroupAdvantages {
  advantages: number[];
  /** TRL's metrics: reward, reward_std (mean over groups of the group's std), frac_reward_zero_std. */
  reward: number;
  reward_std: number;
  frac_reward_zero_std: number;
}

/** Rewards of G consecutive responses per prompt ([prompt 0's G, prompt 1's G, ...]) to advantages. */
export function groupAdvantages(rewards: number[], G: number, scale: ScaleRewards): GroupAdvantages {
  if (G < 2) throw new Error('GRPO needs at least 2 responses per prompt (--num-generations >= 2): a group of 1 has no baseline');
  if (rewards.length % G !== 0) throw new Error(`${rewards.length} rewards are not groups of ${G}`);
  const groups = Array.from({ length: rewards.length / G }, (_, g) => rewards.slice(g * G, (g + 1) * G));
  const stds = groups.map(stdUnbiased);
  const batchStd = stdUnbiased(rewards);
  const advantages = rewards.map((r, i) => {
    const g = Math.floor(i / G);
    const centred = r - mean(groups[g]);
    return scale === 'group' ? centred / (stds[g] + 1e-4) : scale === 'batch' ? centred / (batchStd + 1e-4) : centred;
  });
  return { advantages, reward: mean(rewards), reward_std: mean(stds), frac_reward_zero_std: stds.filter((s) => Math.abs(s) < 1e-8).length / stds.length };
}

export interface GrpoLossConfig {
  epsLow: number;
  epsHigh: number;
  /** 0: no KL term and no reference model. */
  beta: number;
  lossType: GrpoLossType;
  /** dapo: the completion tokens of the whole generation batch; dr_grpo: the maximum completion length. */
  numItems?: number;
  maxCompletionLength?: number;
}

/**
 * The loss over a batch: logp, logpOld, logpRef [N, T] per token, advantages [N], mask [N, T] (1 on
 * completion tokens). Returns the loss and TRL's per-token diagnostics (masked means).
 */
export function grpoLoss(logp: tf.Tensor2D, logpOld: tf.Tensor2D, logpRef: tf.Tensor2D | undefined, advantages: tf.Tensor1D, mask: tf.Tensor2D, c: GrpoLossConfig) {
  const [N] = logp.shape;
  const A = tf.expandDims(advantages, 1);
  const on = tf.greater(mask, 0);
  // masked positions are zeroed before exp (an extreme log-ratio there would be Inf, and Inf * 0 NaN)
  const ratio = tf.exp(tf.where(on, tf.sub(logp, logpOld), tf.zerosLike(logp)));
  const clipped = tf.clipByValue(ratio, 1 - c.epsLow, 1 + c.epsHigh);
  let perToken = tf.neg(tf.minimum(tf.mul(ratio, A), tf.mul(clipped, A)));
  let kl: tf.Tensor | undefined;
  if (c.beta !== 0 && logpRef) {
    const d = tf.where(on, tf.sub(logpRef, logp), tf.zerosLike(logp));
    kl = tf.sub(tf.sub(tf.exp(d), d), 1);
    perToken = tf.add(perToken, tf.mul(kl, c.beta));
  }
  const masked = tf.mul(perToken, mask);
  const tokens = tf.maximum(tf.sum(mask), 1);
  let loss: tf.Scalar;
  if (c.lossType === 'grpo') loss = tf.mean(tf.div(tf.sum(masked, 1), tf.maximum(tf.sum(mask, 1), 1)));
  else if (c.lossType === 'bnpo') loss = tf.div(tf.sum(masked), tokens);
  else if (c.lossType === 'dr_grpo') loss = tf.div(tf.sum(masked), N * (c.maxCompletionLength ?? logp.shape[1]));
  else loss = tf.div(tf.sum(masked), c.numItems !== undefined ? Math.max(1, c.numItems) : tokens);
  const maskedMean = (x: tf.Tensor) => tf.div(tf.sum(tf.mul(x, mask)), tokens) as tf.Scalar;
  const region = tf.logicalOr(tf.logicalAnd(tf.less(ratio, 1 - c.epsLow), tf.less(A, 0)), tf.logicalAnd(tf.greater(ratio, 1 + c.epsHigh), tf.greater(A, 0)));
  return { loss, kl: kl ? maskedMean(kl) : undefined, clipRegion: maskedMean(tf.cast(region, 'float32')) };
}
