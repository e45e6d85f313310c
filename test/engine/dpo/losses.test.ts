import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { testBackend } from '../../helpers';
import { Rng } from '../../../src/engine/rng';
import { RankedGroup, dpoMetrics, pairwiseLoss, plackettLuceLoss } from '../../../src/engine/dpo/losses';

before(testBackend);

const close = (a: number, b: number, eps = 1e-5) => assert.ok(Math.abs(a - b) <= eps * Math.max(1, Math.abs(b)), `${a} vs ${b}`);
const logSigmoid = (x: number) => -Math.log1p(Math.exp(-x));
const lse = (xs: number[]) => {
  const m = Math.max(...xs);
  return m + Math.log(xs.reduce((s, x) => s + Math.exp(x - m), 0));
};

/** The Plackett-Luce negative log-likelihood, evaluated directly from its formula (no ties). */
function directPL(r: number[], ranks: number[]): number {
  const order = ranks.map((rank, i) => [rank, i]).sort((a, b) => a[0] - b[0]).map(([, i]) => i);
  let nll = 0;
  for (let k = 0; k < order.length - 1; k++) nll -= r[order[k]] - lse(order.slice(k).map((i) => r[i]));
  return nll;
}

const value = (t: tf.Scalar) => t.dataSync()[0];

test('Plackett-Luce with K = 2 is the sigmoid DPO loss, exactly', () => {
  const rng = new Rng(1);
  for (let n = 0; n < 20; n++) {
    const lr = [rng.normal() * 3, rng.normal() * 3];
    const beta = 0.05 + rng.next();
    const g: RankedGroup[] = [{ rows: [0, 1], ranks: rng.next() < 0.5 ? [1, 2] : [2, 1] }];
    const pl = value(plackettLuceLoss(tf.tensor1d(lr), g, beta));
    const sig = value(pairwiseLoss(tf.tensor1d(lr), g, { beta, loss: 'sigmoid', labelSmoothing: 0 }));
    const [w, l] = g[0].ranks[0] === 1 ? [0, 1] : [1, 0];
    close(pl, sig, 1e-6);
    close(pl, -logSigmoid(beta * (lr[w] - lr[l])), 1e-5);
  }
});

test('Plackett-Luce with K = 4 and K = 9 equals a direct evaluation of the formula, the mean over records', () => {
  const rng = new Rng(7);
  for (const K of [4, 9]) {
    const groups: RankedGroup[] = [];
    const lr: number[] = [];
    for (let rec = 0; rec < 5; rec++) {
      const perm = Array.from({ length: K }, (_, i) => i + 1);
      for (let i = K - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        [perm[i], perm[j]] = [perm[j], perm[i]];
      }
      groups.push({ rows: Array.from({ length: K }, (_, i) => lr.length + i), ranks: perm });
      for (let i = 0; i < K; i++) lr.push(rng.normal() * 4);
    }
    const beta = 0.3;
    const got = value(plackettLuceLoss(tf.tensor1d(lr), groups, beta));
    const want = groups.reduce((s, g) => s + directPL(g.rows.map((r) => beta * lr[r]), g.ranks), 0) / groups.length;
    close(got, want, 1e-5);
  }
});

test('Plackett-Luce gradients equal finite differences', () => {
  const lr = [0.3, -1.2, 2.0, 0.7, -0.4];
  const groups: RankedGroup[] = [{ rows: [0, 1, 2, 3, 4], ranks: [2, 5, 1, 3, 4] }];
  const g = tf.grad((x: tf.Tensor) => plackettLuceLoss(x as tf.Tensor1D, groups, 0.5))(tf.tensor1d(lr)).dataSync();
  const h = 1e-3;
  lr.forEach((_, i) => {
    const f = (d: number) => directPL(lr.map((x, j) => 0.5 * (j === i ? x + d : x)), groups[0].ranks);
    close(g[i], (f(h) - f(-h)) / (2 * h), 1e-3);
  });
});

test('ties: tied responses are not compared with each other; a record with everything tied gives no term', () => {
  const lr = [1.0, 0.2, -0.5, 0.4];
  const beta = 1;
  // ranks [1, 2, 2, 3]: response 0 against all; 1 and 2 each against themselves and 3; 3 against nothing
  const got = value(plackettLuceLoss(tf.tensor1d(lr), [{ rows: [0, 1, 2, 3], ranks: [1, 2, 2, 3] }], beta));
  const want = -(lr[0] - lse(lr)) - (lr[1] - lse([lr[1], lr[3]])) - (lr[2] - lse([lr[2], lr[3]]));
  close(got, want, 1e-5);
  // all tied: nothing to learn; in a batch with another record it is not counted in the mean
  assert.throws(() => plackettLuceLoss(tf.tensor1d([1, 2]), [{ rows: [0, 1], ranks: [1, 1] }], beta), /no ranking with different ranks/);
  const mixed = value(plackettLuceLoss(tf.tensor1d([1, 2, 0.5, 0.1]), [{ rows: [0, 1], ranks: [1, 1] }, { rows: [2, 3], ranks: [1, 2] }], beta));
  close(mixed, -logSigmoid(0.4), 1e-5);
});

test('cDPO (label smoothing) and IPO follow their formulas', () => {
  const lr = [0.5, -0.3];
  const g: RankedGroup[] = [{ rows: [0, 1], ranks: [1, 2] }];
  const d = 0.8, beta = 0.1;
  close(value(pairwiseLoss(tf.tensor1d(lr), g, { beta, loss: 'sigmoid', labelSmoothing: 0.1 })), -0.9 * logSigmoid(beta * d) - 0.1 * logSigmoid(-beta * d));
  close(value(pairwiseLoss(tf.tensor1d(lr), g, { beta, loss: 'ipo', labelSmoothing: 0 })), (d - 1 / (2 * beta)) ** 2);
});

test('metrics carry TRL\'s names and meaning over the pairs', () => {
  const logp = [-5, -7, -6], ref = [-6, -6, -6];
  const m = dpoMetrics(logp, ref, [{ rows: [0, 1, 2], ranks: [1, 3, 2] }], 0.1);
  // pairs (0,1), (0,2), (2,1): implicit rewards 0.1, -0.1, 0
  close(m['rewards/chosen'], (0.1 + 0.1 + 0) / 3);
  close(m['rewards/rejected'], (-0.1 + 0 - 0.1) / 3);
  close(m['rewards/accuracies'], 1);
  close(m['logps/chosen'], (-5 - 5 - 6) / 3);
});

test("a large vocabulary's sequence log-probabilities (the head in chunks of rows) equal log_softmax at each response token, and so do the gradients", async () => {
  const { Llama } = await import('../../../src/engine/llama');
  const { configFromJson } = await import('../../../src/engine/config');
  const { sequenceLogps } = await import('../../../src/engine/dpo/losses');
  const cfg = configFromJson({
    model_type: 'llama', hidden_size: 16, intermediate_size: 24, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 2,
    max_position_embeddings: 256, vocab_size: 5000, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: false, tokenizer: 'char',
  });
  const m = Llama.init(cfg, 5);
  const rng = new Rng(3);
  const N = 8, T = 120; // 960 rows: four chunks of at most 256
  const ids = tf.tensor2d(Array.from({ length: N * T }, () => rng.int(5000)), [N, T], 'int32');
  const mask = tf.tensor2d(Array.from({ length: N * T }, (_, i) => (i % T >= 40 + 10 * Math.floor(i / T) && i % T < T - 1 ? 1 : 0)), [N, T]);
  const weights = tf.tensor1d([0.5, -1.2, 2, 1, -0.3, 0.8, 1.5, -0.7]);
  const vars = [...m.params.values()];
  // the plain formula: log_softmax over the whole vocabulary, the next token picked by a one-hot
  const next = tf.concat([tf.slice(ids, [0, 1], [N, T - 1]), tf.zeros([N, 1], 'int32')], 1);
  const plain = tf.variableGrads(() => {
    const picked = tf.reshape(tf.sum(tf.mul(tf.logSoftmax(m.logits(ids)), tf.oneHot(tf.reshape(next, [N * T]), 5000)), 1), [N, T]);
    return tf.sum(tf.mul(tf.sum(tf.mul(picked, mask), 1), weights)) as tf.Scalar;
  }, vars);
  let kept: tf.Tensor | undefined;
  const chunked = tf.variableGrads(() => {
    const seq = sequenceLogps(m, ids, mask);
    kept = tf.keep(seq);
    return tf.sum(tf.mul(seq, weights)) as tf.Scalar;
  }, vars);
  assert.ok(Math.abs(plain.value.dataSync()[0] - chunked.value.dataSync()[0]) < 1e-2, `${plain.value.dataSync()[0]} vs ${chunked.value.dataSync()[0]}`);
  assert.ok(kept!.dataSync().every((x) => x < -50), 'sums of many log-probabilities of a 5,000-token vocabulary');
  for (const v of vars) {
    const a = plain.grads[v.name].dataSync(), b = chunked.grads[v.name].dataSync();
    const scale = Math.max(1e-6, ...Array.from(a, Math.abs));
    a.forEach((x, j) => assert.ok(Math.abs(x - b[j]) < 1e-4 * scale + 1e-7, `${v.name}[${j}]: ${x} vs ${b[j]}`));
  }
  // and it never holds the whole [N T, vocabulary] logits: a chunk's at most
  const peak = async (f: () => tf.Tensor) => (await tf.profile(() => { f().dispose(); })).peakBytes;
  const full = await peak(() => tf.logSoftmax(m.logits(ids))), seq = await peak(() => sequenceLogps(m, ids, mask));
  assert.ok(seq < 0.6 * full, `peak ${seq} bytes against ${full} for the whole logits`);
  m.dispose();
});
