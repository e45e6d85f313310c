/**
 * DPO's losses (Rafailov et al. 2023) on a policy's and a frozen reference's log-probabilities of
 * whole responses. The implicit reward of response i is
 *     r_i = beta * (log pi(y_i | x) - log pi_ref(y_i | x)).
 * Pairs (winner w, loser l), with delta = r_w - r_l:
 *     sigmoid   -log sigma(delta)                                        (the paper's eq. 7)
 *     cDPO      -(1 - eps) log sigma(delta) - eps log sigma(-delta)      (label smoothing eps)
 *     IPO       (delta / beta - 1 / (2 beta))^2                          (Azar et al. 2023, as TRL)
 * K-way rankings, Plackett-Luce (the paper's appendix A.3): the probability of the ranking
 * tau (tau(1) best) is prod_k exp(r_tau(k)) / sum_{j >= k} exp(r_tau(j)), and the loss is its
 * negative log. Ties, our rule: tied responses are not compared with each other; each response is
 * compared with the set of all strictly worse ones, a factor exp(r_i) / (exp(r_i) + sum_{j worse} exp(r_j)).
 * Without ties that is exactly Plackett-Luce (the set at stage k is tau(k) and everything after);
 * with K = 2 it is the sigmoid loss; a record with everything tied gives no term (it is skipped).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { CausalLM } from '../causal-lm';
import { LARGE_VOCAB, chunkedTokenLogps } from '../train/lm-loss';

export type DpoLossType = 'sigmoid' | 'ipo';

export interface DpoLossConfig {
  beta: number;
  loss: DpoLossType;
  /** cDPO's eps: the probability that a preference label is flipped (sigmoid loss only). */
  labelSmoothing: number;
}

/** One record's structure for the loss: the rows of its responses in the batch, and their ranks. */
export interface RankedGroup {
  rows: number[];
  ranks: number[];
}

/** The (winner row, loser row) pairs of a group: every two responses with different ranks. */
export function groupPairs(g: RankedGroup): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < g.rows.length; i++) {
    for (let j = 0; j < g.rows.length; j++) if (g.ranks[i] < g.ranks[j]) out.push([g.rows[i], g.rows[j]]);
  }
  return out;
}

/** Pairwise DPO loss, the mean over all pairs of all groups. `logratio` [N] = log pi - log pi_ref per response. */
export function pairwiseLoss(logratio: tf.Tensor1D, groups: RankedGroup[], c: DpoLossConfig): tf.Scalar {
  const pairs = groups.flatMap(groupPairs);
  if (!pairs.length) throw new Error('no pair with different ranks in this batch');
  const w = tf.gather(logratio, tf.tensor1d(pairs.map((p) => p[0]), 'int32'));
  const l = tf.gather(logratio, tf.tensor1d(pairs.map((p) => p[1]), 'int32'));
  const d = tf.sub(w, l); // delta / beta
  if (c.loss === 'ipo') return tf.mean(tf.square(tf.sub(d, 1 / (2 * c.beta))));
  const z = tf.mul(d, c.beta);
  const eps = c.labelSmoothing;
  const loss = eps > 0 ? tf.add(tf.mul(tf.neg(logSigmoid(z)), 1 - eps), tf.mul(tf.neg(logSigmoid(tf.neg(z))), eps)) : tf.neg(logSigmoid(z));
  return tf.mean(loss);
}

/**
 * log sigma(z) = min(z, 0) - log(1 + exp(-|z|)), stable for any z, from ops with ordinary gradients
 * (tf.logSigmoid's custom gradient failed under variableGrads inside tidy: a disposed saved tensor).
 */
/** x in the forward pass, no gradient in the backward one (a constant to the optimiser). */
const stopGradient = tf.customGrad(((x: tf.Tensor) => ({ value: tf.clone(x), gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy) })) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor) => tf.Tensor;

export function logSigmoid(z: tf.Tensor): tf.Tensor {
  return tf.sub(tf.minimum(z, 0), tf.log1p(tf.exp(tf.neg(tf.abs(z)))));
}

/**
 * Plackett-Luce loss, the mean over groups of each ranking's negative log-likelihood (the sum of its
 * factors, above). Groups with every response tied contribute nothing and are not counted.
 */
export function plackettLuceLoss(logratio: tf.Tensor1D, groups: RankedGroup[], beta: number): tf.Scalar {
  // one factor per response that has a strictly worse one: its row, and the rows of the set it faces
  const picked: number[] = [], setRow: number[] = [], setFactor: number[] = [];
  let factors = 0, counted = 0;
  for (const g of groups) {
    let any = false;
    g.rows.forEach((row, i) => {
      const worse = g.rows.filter((_, j) => g.ranks[j] > g.ranks[i]);
      if (!worse.length) return;
      any = true;
      picked.push(row);
      for (const r of [row, ...worse]) {
        setRow.push(r);
        setFactor.push(factors);
      }
      factors++;
    });
    if (any) counted++;
  }
  if (!counted) throw new Error('no ranking with different ranks in this batch');
  const r = tf.mul(logratio, beta);
  // log sum_{j in set} exp(r_j) per factor, stably: segment log-sum-exp with the max subtracted
  const setR = tf.gather(r, tf.tensor1d(setRow, 'int32'));
  const seg = tf.tensor1d(setFactor, 'int32');
  // each set's largest reward, a constant for the gradient (only there to keep exp from overflowing),
  // found on the device: the sets laid out as rows of a [factors, widest] matrix, short rows padded
  // with their own first member
  const members: number[][] = Array.from({ length: factors }, () => []);
  setRow.forEach((row, k) => members[setFactor[k]].push(row));
  const widest = Math.max(...members.map((m) => m.length));
  const grid = members.flatMap((m) => Array.from({ length: widest }, (_, j) => m[j] ?? m[0]));
  const max = stopGradient(tf.max(tf.reshape(tf.gather(r, tf.tensor1d(grid, 'int32')), [factors, widest]), 1));
  const sumExp = tf.unsortedSegmentSum(tf.exp(tf.sub(setR, tf.gather(max, seg))), seg, factors);
  const logZ = tf.add(tf.log(sumExp), max);
  const nll = tf.sub(logZ, tf.gather(r, tf.tensor1d(picked, 'int32')));
  return tf.div(tf.sum(nll), counted);
}

/** TRL's metrics over the pairs: rewards/chosen, rewards/rejected, rewards/accuracies, rewards/margins, logps/chosen, logps/rejected. */
export function dpoMetrics(logp: ArrayLike<number>, logpRef: ArrayLike<number>, groups: RankedGroup[], beta: number): Record<string, number> {
  const pairs = groups.flatMap(groupPairs);
  const rw = (i: number) => beta * (logp[i] - logpRef[i]);
  const mean = (f: (p: [number, number]) => number) => pairs.reduce((s, p) => s + f(p), 0) / (pairs.length || 1);
  return {
    'rewards/chosen': mean(([w]) => rw(w)),
    'rewards/rejected': mean(([, l]) => rw(l)),
    'rewards/accuracies': mean(([w, l]) => (rw(w) > rw(l) ? 1 : 0)),
    'rewards/margins': mean(([w, l]) => rw(w) - rw(l)),
    'logps/chosen': mean(([w]) => logp[w]),
    'logps/rejected': mean(([, l]) => logp[l]),
  };
}

/** K-way rankings: 'pl' (Plackett-Luce over the whole ranking) or 'pairs' (all C(K,2) pairs). */
export type KwayMode = 'pl' | 'pairs';

/** The loss a batch trains on: Plackett-Luce, the sigmoid loss's K-way form, where it applies; IPO and label smoothing are defined on pairs. */
export function dpoLoss(logratio: tf.Tensor1D, groups: RankedGroup[], c: DpoLossConfig & { kway: KwayMode }): tf.Scalar {
  return usesPlackettLuce(c) ? plackettLuceLoss(logratio, groups, c.beta) : pairwiseLoss(logratio, groups, c);
}

function usesPlackettLuce(c: DpoLossConfig & { kway: KwayMode }): boolean {
  return c.kway === 'pl' && c.loss === 'sigmoid' && c.labelSmoothing === 0;
}

/**
 * How many terms `dpoLoss` averages over these groups: rankings with two different ranks
 * (Plackett-Luce) or pairs. A batch split into parts has the loss sum_i (terms_i / terms) loss_i.
 */
export function dpoLossTerms(groups: RankedGroup[], c: DpoLossConfig & { kway: KwayMode }): number {
  const pairs = groups.map((g) => groupPairs(g).length);
  return usesPlackettLuce(c) ? pairs.filter((n) => n > 0).length : pairs.reduce((a, n) => a + n, 0);
}

/**
 * Sum of log pi(response tokens | context) per sequence [N]; `mask` [N, T] marks the positions that
 * predict a response token. A large vocabulary's logits (SmolLM2's 49,152 x 16 responses x 256
 * tokens is 0.8 GB a copy) are made a chunk of rows at a time (train/lm-loss.ts), as SFT's are.
 */
export function sequenceLogps(model: CausalLM, ids: tf.Tensor2D, mask: tf.Tensor2D): tf.Tensor1D {
  const [N, T] = ids.shape;
  if (model.config.vocab_size >= LARGE_VOCAB) return tf.sum(tf.mul(chunkedTokenLogps(model, ids, 1, false).logp, mask), 1) as tf.Tensor1D;
  const logp = tf.logSoftmax(model.logits(ids));
  const next = tf.concat([tf.slice(ids, [0, 1], [N, T - 1]), tf.zeros([N, 1], 'int32')], 1);
  const picked = tf.reshape(tf.sum(tf.mul(logp, tf.oneHot(tf.reshape(next, [N * T]), model.config.vocab_size)), 1), [N, T]);
  return tf.sum(tf.mul(picked, mask), 1) as tf.Tensor1D;
}
