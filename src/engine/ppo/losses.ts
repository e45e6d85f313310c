/**
 * PPO's losses over response tokens (mask = 1), as in TRL's PPOTrainer:
 *   policy: mean max(-A * ratio, -A * clip(ratio, 1 - eps, 1 + eps)),  ratio = exp(logp - logp_old)
 *   value:  0.5 * mean max((V - R)^2, (V_old + clip(V - V_old, -eps_v, eps_v) - R)^2)
 * Also the diagnostics TRL logs: clip fractions, approximate KL 0.5 * mean((logp - logp_old)^2)
 * and the mean ratio.
 */
import * as tf from '@tensorflow/tfjs-core';

function maskedMean(x: tf.Tensor, mask: tf.Tensor): tf.Scalar {
  return tf.div(tf.sum(tf.mul(x, mask)), tf.maximum(tf.sum(mask), 1));
}

export function policyLoss(logp: tf.Tensor, logpOld: tf.Tensor, advantages: tf.Tensor, mask: tf.Tensor, clip: number) {
  // masked positions (padding, the prompt) are set to 0 before exp: exp of a large difference there
  // would be Inf, and Inf * 0 = NaN in the masked mean
  const ratio = tf.exp(tf.where(tf.greater(mask, 0), tf.sub(logp, logpOld), tf.zerosLike(logp)));
  const unclipped = tf.mul(tf.neg(advantages), ratio);
  const clipped = tf.mul(tf.neg(advantages), tf.clipByValue(ratio, 1 - clip, 1 + clip));
  const loss = maskedMean(tf.maximum(unclipped, clipped), mask);
  return {
    loss,
    clipfrac: maskedMean(tf.cast(tf.greater(clipped, unclipped), 'float32'), mask),
    approxkl: maskedMean(tf.mul(tf.square(tf.sub(logp, logpOld)), 0.5), mask),
    ratio: maskedMean(ratio, mask),
  };
}

export function valueLoss(values: tf.Tensor, valuesOld: tf.Tensor, returns: tf.Tensor, mask: tf.Tensor, clip: number) {
  const clippedValues = tf.add(valuesOld, tf.clipByValue(tf.sub(values, valuesOld), -clip, clip));
  const l1 = tf.square(tf.sub(values, returns));
  const l2 = tf.square(tf.sub(clippedValues, returns));
  return {
    loss: tf.mul(maskedMean(tf.maximum(l1, l2), mask), 0.5) as tf.Scalar,
    clipfrac: maskedMean(tf.cast(tf.greater(l2, l1), 'float32'), mask),
  };
}
