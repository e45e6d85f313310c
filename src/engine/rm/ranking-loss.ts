/**
 * InstructGPT's reward-model loss for K-way rankings (Ouyang et al. 2022, eq. 1):
 *   loss = -1/C(K,2) * sum over pairs (w, l) of log sigmoid(r(x, y_w) - r(x, y_l) [- margin])
 * All comparisons of one ranking form one batch element, so a record costs K forward passes,
 * not C(K,2); tied responses give no pair. Records are averaged, each weighing the same however
 * many pairs it has. -log sigmoid(d) is computed as softplus(-d), stable for any d.
 */
import * as tf from '@tensorflow/tfjs-core';
import { comparisons } from '../../data/rm';

export interface PairSet {
  winners: number[];
  losers: number[];
  /** 1 / (pairs of its record * records with pairs): the weights sum to 1. */
  weights: number[];
  margins: number[];
}

/**
 * Pairs of a batch of rankings whose responses sit at rows offsets[i] .. offsets[i] + K_i - 1
 * of the reward vector. `recordsInBatch` counts the records with pairs of the whole batch when
 * `records` is only a part of it, so the parts' losses add up to the batch's.
 */
export function pairsFor(records: { ranks: number[]; flags: string[]; margin?: number }[], offsets: number[], recordsInBatch?: number): PairSet {
  const per = records.map((r) => comparisons({ ...r, line: 0, prompt: '', context: '', responses: [] }));
  // records with pairs in the whole batch (when these records are one part of it)
  const withPairs = recordsInBatch ?? per.filter((p) => p.length > 0).length;
  const out: PairSet = { winners: [], losers: [], weights: [], margins: [] };
  per.forEach((pairs, i) => {
    for (const [w, l] of pairs) {
      out.winners.push(offsets[i] + w);
      out.losers.push(offsets[i] + l);
      out.weights.push(1 / (pairs.length * withPairs));
      out.margins.push(records[i].margin ?? 0);
    }
  });
  return out;
}

/** Differences r_w - r_l of every pair. */
export function pairDifferences(rewards: tf.Tensor1D, p: PairSet): tf.Tensor1D {
  return tf.sub(tf.gather(rewards, tf.tensor1d(p.winners, 'int32')), tf.gather(rewards, tf.tensor1d(p.losers, 'int32')));
}

export function rankingLoss(rewards: tf.Tensor1D, p: PairSet): tf.Scalar {
  if (!p.winners.length) return tf.scalar(0);
  const d = tf.sub(pairDifferences(rewards, p), tf.tensor1d(p.margins));
  return tf.sum(tf.mul(tf.softplus(tf.neg(d)), tf.tensor1d(p.weights)));
}

/** Pair accuracy (r_w > r_l) and mean margin r_w - r_l, weighted as the loss is. */
export function pairStats(rewards: ArrayLike<number>, p: PairSet): { accuracy: number; margin: number } {
  let acc = 0, margin = 0, wsum = 0;
  p.winners.forEach((w, i) => {
    const d = rewards[w] - rewards[p.losers[i]];
    acc += p.weights[i] * (d > 0 ? 1 : 0);
    margin += p.weights[i] * d;
    wsum += p.weights[i];
  });
  return wsum ? { accuracy: acc / wsum, margin: margin / wsum } : { accuracy: NaN, margin: NaN };
}
