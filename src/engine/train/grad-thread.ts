/**
 * A gradient replica on another core (worker_threads). The wasm backend runs one thread per
 * process, so data parallelism is how training uses a second core: this thread holds a copy of
 * the model (a CausalLM, or a reward model: CausalLM + score head), receives the current weights and its
 * share of the batch, and returns its loss and gradients. The main thread combines them and
 * takes the optimizer step.
 *
 * DPO splits its batch the same way, by rankings: each part returns its loss (a mean over its
 * rankings or pairs), gradients and the policy's log-probabilities, weighted by its share of the terms.
 *
 * GRPO and RLOO put their frozen models here (`frozen`: the reference; `scorer`: the reward model):
 * a rollout's reference log-probabilities and rewards are computed here while the main thread
 * computes the policy's, with the same kernels on the same rows, so the numbers are one thread's.
 *
 * PPO uses a replica of its critic instead (model parallelism, no batch split): while the main
 * thread runs the policy, this one computes the critic's values of a rollout, the frozen reward
 * model's scores (a second model, `scorer`) and the value loss's gradients. Nothing is summed in
 * another order, so a PPO run's numbers are those of a run on one thread.
 */
import { parentPort } from 'worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { take, takeScalar } from '../read';
import { BackendName, initBackend } from '../backends/backend';
import { CausalLM, createModel, initModel, parameterShapes } from '../causal-lm';
import { Lora, LoraConfig } from '../lora';
import { ModelConfig } from '../config';
import { Rng } from '../rng';
import { RewardModel } from '../rm/reward-model';
import { PairSet, rankingLoss } from '../rm/ranking-loss';
import { Batch } from './batch';
import { lmLoss } from './lm-loss';
import { mapRows } from '../read';
import { valueLoss } from '../ppo/losses';
import { DpoLossConfig, KwayMode, RankedGroup, dpoLoss, sequenceLogps } from '../dpo/losses';
import { adapterOff } from '../causal-lm';
import { tokenLogps } from '../rl/rollout';
import { scoreSequences } from '../rm/score';

/** A reward-model batch: padded sequences, where each is read, and the pairs (weights global to the whole batch). */
export interface RankBatch {
  ids: Int32Array;
  N: number;
  T: number;
  last: number[];
  pairs: PairSet;
}

/**
 * A DPO batch: the responses of some rankings, padded [N, T], the mask of the positions that predict
 * a response token, the rankings (rows and ranks), the reference's log-probabilities [N] and the loss.
 */
export interface DpoBatch {
  ids: Int32Array;
  mask: Float32Array;
  N: number;
  T: number;
  groups: RankedGroup[];
  refLogps: Float32Array;
  loss: DpoLossConfig & { kway: KwayMode };
}

/** A PPO minibatch for the critic: rows [M, T] of the rollout, its response mask, old values and returns. */
export interface ValueBatch {
  ids: Int32Array;
  M: number;
  T: number;
  mask: Float32Array;
  valuesOld: Float32Array;
  returns: Float32Array;
  clip: number;
}

/**
 * The frozen reward model beside a critic replica: its head, and its trunk's weights, or none when
 * the trunk is the critic's own base with the adapter off (LoRA: one copy of the base serves both).
 */
export interface ThreadScorer {
  head: [Float32Array, Float32Array];
  trunk?: { names: string[]; weights: Float32Array[] };
  /** The trunk's configuration when it is not the thread's model's (GRPO's reward model beside the reference). */
  config?: ModelConfig;
  /** A reward model saved as an adapter: its configuration and, per module, A, B and their [in, out]. */
  adapter?: { cfg: LoraConfig; modules: [string, Float32Array, Float32Array, number, number][] };
}

export type ThreadRequest =
  | { type: 'init'; backend: BackendName; config: ModelConfig; names: string[]; head: boolean; adapter?: ThreadAdapter; scorer?: ThreadScorer; frozen?: FrozenWeights }
  | { type: 'grad'; weights?: Float32Array[]; batch: Batch; seed: number }
  | { type: 'rank'; weights?: Float32Array[]; batch: RankBatch; seed: number }
  | { type: 'dpo'; weights?: Float32Array[]; batch: DpoBatch }
  | { type: 'logps'; weights?: Float32Array[]; ids: Int32Array; mask: Float32Array; N: number; T: number }
  | { type: 'token-logps'; ids: Int32Array; N: number; T: number; temperature: number }
  | { type: 'score-seqs'; seqs: number[][]; pad: number }
  | { type: 'replica-scores'; weights?: Float32Array[]; seqs: number[][]; pad: number }
  | { type: 'values'; weights?: Float32Array[]; ids: Int32Array; N: number; T: number }
  | { type: 'scores'; ids: Int32Array; N: number; T: number; last: number[] }
  | { type: 'value-grad'; weights?: Float32Array[]; batch: ValueBatch }
  | { type: 'close' };

export type ThreadReply =
  | { type: 'ready' }
  | { type: 'grad'; loss: number; grads: Float32Array[]; rewards?: Float32Array; clipfrac?: number; logps?: Float32Array }
  | { type: 'values'; values: Float32Array }
  | { type: 'error'; message: string };

/**
 * A LoRA run's replica: the frozen base weights, sent once at the start, and the adapter's
 * configuration and modules (its weights arrive with the first request, as a full run's do).
 */
export interface ThreadAdapter {
  cfg: LoraConfig;
  modules: [string, [number, number]][];
  base: { names: string[]; weights: Float32Array[] };
}

/** A frozen model's weights, sent once (GRPO's and RLOO's reference); weights it does not name are zeros. */
export interface FrozenWeights {
  names: string[];
  weights: Float32Array[];
}

type Params = Map<string, tf.Variable>;

function gradsByName(params: Params, run: () => tf.Scalar) {
  const vars = [...params.values()].filter((v) => v.trainable);
  const byVar = new Map([...params].map(([n, v]) => [v.name, n]));
  const { value, grads } = tf.tidy(() => tf.variableGrads(run, vars));
  return { value, grads: new Map(Object.entries(grads).map(([k, g]) => [byVar.get(k)!, g])) };
}

/** Next-token loss and gradients of a batch. */
export function lossAndGrads(model: CausalLM, b: Batch, rng: Rng): { value: tf.Scalar; grads: Map<string, tf.Tensor> } {
  return gradsByName(model.params, () =>
    lmLoss(model, tf.tensor2d(b.ids, [b.B, b.T], 'int32'), tf.tensor1d(b.targets, 'int32'), tf.tensor1d(b.weights, 'float32'), { training: true, rng }),
  );
}

/** PPO's clipped value loss of a minibatch, its gradients and its clip fraction. */
export async function valueLossAndGrads(critic: RewardModel, b: ValueBatch) {
  let clipfrac: tf.Tensor | undefined;
  const r = gradsByName(critic.params, () => {
    const t = (a: Float32Array) => tf.tensor2d(a, [b.M, b.T]);
    const vl = valueLoss(critic.values(tf.tensor2d(b.ids, [b.M, b.T], 'int32')), t(b.valuesOld), t(b.returns), t(b.mask), b.clip);
    clipfrac = tf.keep(vl.clipfrac);
    return vl.loss;
  });
  return { ...r, clipfrac: await takeScalar(clipfrac!) };
}

/** Ranking loss and gradients of a reward-model batch; also the rewards it computed. */
export async function rankLossAndGrads(rm: RewardModel, b: RankBatch, rng: Rng) {
  let kept: tf.Tensor | undefined;
  const r = gradsByName(rm.params, () => {
    const r = rm.rewards(tf.tensor2d(b.ids, [b.N, b.T], 'int32'), b.last, { training: true, rng });
    kept = tf.keep(tf.clone(r)); // read after the gradient pass (WebGPU reads only asynchronously)
    return rankingLoss(r, b.pairs);
  });
  return { ...r, rewards: await take(kept!) };
}

/** DPO's loss and the policy's gradients over a batch of rankings; also the policy's log-probabilities [N]. */
export async function dpoLossAndGrads(policy: CausalLM, b: DpoBatch) {
  let kept: tf.Tensor | undefined;
  const r = gradsByName(policy.params, () => {
    const seq = sequenceLogps(policy, tf.tensor2d(b.ids, [b.N, b.T], 'int32'), tf.tensor2d(b.mask, [b.N, b.T]));
    kept = tf.keep(tf.clone(seq)); // read after the gradient pass (WebGPU reads only asynchronously)
    return dpoLoss(tf.sub(seq, tf.tensor1d(b.refLogps)) as tf.Tensor1D, b.groups, b.loss);
  });
  return { ...r, logps: await take(kept!) };
}

/** The reward model of a PPO run, frozen, on the critic's thread. */
function threadScorer(config: ModelConfig, s: ThreadScorer, critic: CausalLM): RewardModel {
  if (!s.trunk) return new RewardModel(adapterOff(critic), s.head[0], s.head[1], false);
  config = s.config ?? config;
  const given = new Map(s.trunk.names.map((n, i) => [n, s.trunk!.weights[i]]));
  // an untied LM head (Llama) plays no part in a score: zeros
  const weights = new Map(parameterShapes(config).map(([n, shape]) => [n, given.get(n) ?? new Float32Array(shape.reduce((a, x) => a * x, 1))]));
  const trunk = createModel(config, weights, false);
  if (s.adapter) {
    const mods = s.adapter.modules;
    trunk.attachLora(new Lora(s.adapter.cfg, new Map(mods.map(([m, , , inF, outF]) => [m, [inF, outF]])), 0, new Map(mods.map(([m, A, B]) => [m, { A, B }])), false));
  }
  return new RewardModel(trunk, s.head[0], s.head[1], false);
}

if (parentPort) {
  const port = parentPort;
  let params: Params | undefined;
  let gpt: CausalLM | undefined;
  let rm: RewardModel | undefined;
  let scorer: RewardModel | undefined;
  let names: string[] = [];
  // one request at a time, in the order they came; each reply carries its request's id
  let queue = Promise.resolve();
  port.on('message', (m: ThreadRequest & { id: number }) => {
    queue = queue.then(() => handle(m));
  });
  async function handle(m: ThreadRequest & { id: number }) {
    const reply = (r: ThreadReply, transfer: ArrayBuffer[] = []) => port.postMessage({ ...r, id: m.id }, transfer);
    const replyValues = (values: Float32Array) => reply({ type: 'values', values }, [values.buffer as ArrayBuffer]);
    try {
      if (m.type === 'close') {
        (rm ?? gpt)?.dispose();
        scorer?.dispose();
        port.close();
        return;
      }
      if (m.type === 'init') {
        await initBackend(m.backend);
        names = m.names;
        if (m.frozen) {
          const given = new Map(m.frozen.names.map((n, i) => [n, m.frozen!.weights[i]]));
          gpt = createModel(m.config, new Map(parameterShapes(m.config).map(([n, shape]) => [n, given.get(n) ?? new Float32Array(shape.reduce((a, x) => a * x, 1))])), false);
        } else if (m.adapter) {
          // the base as the main thread holds it (weights it does not hold, e.g. an untied head a
          // reward model never reads, are zeros), frozen, with the adapter on top
          const base = new Map(m.adapter.base.names.map((n, i) => [n, m.adapter!.base.weights[i]]));
          const weights = new Map(parameterShapes(m.config).map(([n, shape]) => [n, base.get(n) ?? new Float32Array(shape.reduce((a, x) => a * x, 1))]));
          gpt = createModel(m.config, weights, false);
          gpt.attachLora(new Lora(m.adapter.cfg, new Map(m.adapter.modules), 0));
        } else gpt = initModel(m.config, 0); // the real weights arrive with the first request
        if (m.head) rm = new RewardModel(gpt, new Float32Array(m.config.n_embd), new Float32Array(1));
        params = rm?.params ?? gpt.params;
        if (m.scorer) scorer = threadScorer(m.config, m.scorer, gpt);
        reply({ type: 'ready' } satisfies ThreadReply);
        return;
      }
      if (!params || !gpt) throw new Error('gradient thread used before init');
      if (m.type === 'scores') {
        // the reward model's weights never change: they came with init
        if (!scorer) throw new Error('no reward model on this thread');
        const values = await take(tf.tidy(() => scorer!.rewards(tf.tensor2d(m.ids, [m.N, m.T], 'int32'), m.last)));
        replyValues(values);
        return;
      }
      if (m.type === 'token-logps') {
        // the frozen model's per-token log-probabilities of a rollout [N * T], as rl/group.ts's rolloutLogps
        const values = await take(tf.tidy(() => tokenLogps(gpt!, tf.tensor2d(m.ids, [m.N, m.T], 'int32'), false, m.temperature).logp));
        replyValues(values);
        return;
      }
      if (m.type === 'score-seqs') {
        if (!scorer) throw new Error('no reward model on this thread');
        const values = await scoreSequences(scorer, m.seqs, m.pad);
        replyValues(values);
        return;
      }
      if (m.weights) {
        const p = params;
        tf.tidy(() => names.forEach((n, i) => p.get(n)!.assign(tf.tensor(m.weights![i], p.get(n)!.shape))));
      }
      if ((m.type === 'values' || m.type === 'value-grad' || m.type === 'replica-scores') && !rm) throw new Error('no reward model replica on this thread');
      if (m.type === 'replica-scores') {
        // the trained reward model's replica, at the main thread's current weights
        const values = await scoreSequences(rm!, m.seqs, m.pad);
        replyValues(values);
        return;
      }
      if (m.type === 'values') {
        const values = await mapRows(m.ids, m.N, m.T, (ids) => rm!.values(ids));
        replyValues(values);
        return;
      }
      if (m.type === 'value-grad') {
        const r = await valueLossAndGrads(rm!, m.batch);
        const out = await Promise.all(names.map((n) => take(r.grads.get(n)!)));
        const loss = await takeScalar(r.value);
        reply({ type: 'grad', loss, grads: out, clipfrac: r.clipfrac } satisfies ThreadReply, out.map((a) => a.buffer as ArrayBuffer));
        return;
      }
      if (m.type === 'logps') {
        const values = await take(tf.tidy(() => sequenceLogps(gpt!, tf.tensor2d(m.ids, [m.N, m.T], 'int32'), tf.tensor2d(m.mask, [m.N, m.T]))));
        replyValues(values);
        return;
      }
      if (m.type === 'dpo') {
        const r = await dpoLossAndGrads(gpt, m.batch);
        const out = await Promise.all(names.map((n) => take(r.grads.get(n)!)));
        const loss = await takeScalar(r.value);
        reply({ type: 'grad', loss, grads: out, logps: r.logps } satisfies ThreadReply, [...out, r.logps].map((a) => a.buffer as ArrayBuffer));
        return;
      }
      const rng = new Rng(m.seed);
      const r = m.type === 'rank' ? await rankLossAndGrads(rm!, m.batch, rng) : { ...lossAndGrads(gpt, m.batch, rng), rewards: undefined };
      const out = await Promise.all(names.map((n) => take(r.grads.get(n)!)));
      const loss = await takeScalar(r.value);
      reply({ type: 'grad', loss, grads: out, rewards: r.rewards } satisfies ThreadReply, out.map((a) => a.buffer as ArrayBuffer));
    } catch (e) {
      reply({ type: 'error', message: (e as Error).message } satisfies ThreadReply);
    }
  }
}
