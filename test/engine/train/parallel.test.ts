import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { testBackend } from '../../helpers';
import { initModel } from '../../../src/engine/causal-lm';
import { defaultConfig } from '../../../src/engine/config';
import { Rng } from '../../../src/engine/rng';
import { RankedGroup, dpoLossTerms } from '../../../src/engine/dpo/losses';
import { DpoBatch, dpoLossAndGrads } from '../../../src/engine/train/grad-thread';
import { GradThreads } from '../../../src/engine/train/parallel';
import { take } from '../../../src/engine/read';

before(testBackend);

/** Rankings of K = 4, 3, 2 and 3 responses of different lengths; `ref` log-probabilities away from the policy's. */
function rankings(rng: Rng) {
  return [4, 3, 2, 3].map((K, r) => ({
    seqs: Array.from({ length: K }, (_, i) => Array.from({ length: 6 + ((r + 2 * i) % 5) }, () => 1 + rng.int(30))),
    ranks: Array.from({ length: K }, (_, i) => [1, 2, 2, 3][i] ?? K), // a tie in the K = 4 and K = 3 rankings
    ref: Array.from({ length: K }, () => -20 - 10 * rng.next()),
  }));
}

function batchOf(recs: ReturnType<typeof rankings>, loss: DpoBatch['loss']): DpoBatch {
  const seqs = recs.flatMap((r) => r.seqs);
  const T = Math.max(...seqs.map((s) => s.length));
  const ids = new Int32Array(seqs.length * T), mask = new Float32Array(seqs.length * T);
  seqs.forEach((s, n) => {
    ids.set(s, n * T);
    for (let t = 2; t < s.length - 1; t++) mask[n * T + t] = 1; // the response: from the third token on
  });
  const groups: RankedGroup[] = [];
  let row = 0;
  for (const r of recs) {
    groups.push({ rows: r.seqs.map((_, i) => row + i), ranks: r.ranks });
    row += r.seqs.length;
  }
  return { ids, mask, N: seqs.length, T, groups, refLogps: Float32Array.from(recs.flatMap((r) => r.ref)), loss };
}

test('DPO loss and gradients over two threads equal one pass over the whole batch (each part weighed by its rankings or pairs)', async () => {
  const model = initModel(defaultConfig({ n_layer: 1, n_head: 2, n_embd: 16, n_positions: 16, vocab_size: 32 }), 3);
  const par = await GradThreads.start(model, 1);
  try {
    const recs = rankings(new Rng(9));
    for (const loss of [{ beta: 0.3, loss: 'sigmoid', labelSmoothing: 0, kway: 'pl' }, { beta: 0.3, loss: 'ipo', labelSmoothing: 0, kway: 'pairs' }, { beta: 0.3, loss: 'sigmoid', labelSmoothing: 0.1, kway: 'pairs' }] as const) {
      const whole = batchOf(recs, loss);
      // unequal parts: three rankings and one (Plackett-Luce weighs them 3:1; pairs of different ranks 8:2)
      const parts = [batchOf(recs.slice(0, 3), loss), batchOf(recs.slice(3), loss)];
      const terms = parts.map((p) => dpoLossTerms(p.groups, loss));
      assert.deepEqual(terms, loss.kway === 'pl' ? [3, 1] : [5 + 2 + 1, 2]);
      const one = await dpoLossAndGrads(model, whole);
      const oneLoss = (await take(one.value))[0];
      const two = await par.dpoLossAndGrads(parts, terms);
      assert.ok(Math.abs(oneLoss - two.loss) < 1e-5, `${loss.loss}/${loss.kway}: loss ${oneLoss} vs ${two.loss}`);
      two.logps.forEach((x, i) => assert.ok(Math.abs(x - one.logps[i]) < 1e-4, `log-probability ${i}: ${x} vs ${one.logps[i]}`));
      let worst = 0, largest = 0;
      for (const [n, g] of one.grads) {
        const a = await take(g), b = await take(two.grads.get(n)!);
        a.forEach((x, i) => {
          worst = Math.max(worst, Math.abs(x - b[i]));
          largest = Math.max(largest, Math.abs(x));
        });
      }
      assert.ok(largest > 1e-3, 'the gradients are not all zero');
      assert.ok(worst < 1e-5 * Math.max(1, largest), `${loss.loss}/${loss.kway}: gradients differ by ${worst} (largest ${largest})`);
      tf.dispose([one.value, ...one.grads.values(), ...two.grads.values()]);
    }
  } finally {
    await par.close();
    model.dispose();
  }
});

test("reward-model scores with every other chunk on the replica's thread are one thread's to the bit, after an update too", async () => {
  const { RewardModel } = await import('../../../src/engine/rm/reward-model');
  const { scoreSequences } = await import('../../../src/engine/rm/score');
  const trunk = initModel(defaultConfig({ n_layer: 1, n_head: 2, n_embd: 16, n_positions: 16, vocab_size: 32 }), 4);
  const rm = new RewardModel(trunk, Float32Array.from({ length: 16 }, (_, i) => Math.sin(i)), new Float32Array([0.1]));
  const par = await GradThreads.start(rm, 1);
  try {
    const rng = new Rng(5);
    const seqs = Array.from({ length: 37 }, () => Array.from({ length: 3 + rng.int(13) }, () => 1 + rng.int(30)));
    const helper = (part: number[][]) => par.replicaScores(part, 0);
    for (const round of [0, 1]) {
      const one = await scoreSequences(rm, seqs, 0, 8);
      const two = await scoreSequences(rm, seqs, 0, 8, helper); // 5 chunks of 8 and less: 2 on the thread
      assert.deepEqual([...two], [...one], `round ${round}`);
      // an optimizer step changes the weights: the replica receives them with the next request
      for (const v of rm.params.values()) v.assign(tf.add(v, tf.randomNormal(v.shape, 0, 0.05, 'float32', 7)));
      par.invalidate();
    }
  } finally {
    await par.close();
    rm.dispose();
  }
});
