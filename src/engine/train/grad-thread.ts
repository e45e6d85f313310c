/**
 * A gradient replica on another core (worker_threads). The wasm backend runs one thread per
 * process, so data parallelism is how training uses a second core: this thread holds a copy of
 * the model (a CausalLM, or a reward model: CausalLM + score head), receives the current weights and its
 * share of the batch, and returns its loss and gradients. The main thread combines them and
 * takes the optimizer step.
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
import { Batch } from './trainer';
import { lmLoss } from './lm-loss';

/** A reward-model batch: padded sequences, where each is read, and the pairs (weights global to the whole batch). */
export interface RankBatch {
  ids: Int32Array;
  N: number;
  T: number;
  last: number[];
  pairs: PairSet;
}

export type ThreadRequest =
  | { type: 'init'; backend: BackendName; config: ModelConfig; names: string[]; head: boolean; adapter?: ThreadAdapter }
  | { type: 'grad'; weights?: Float32Array[]; batch: Batch; seed: number }
  | { type: 'rank'; weights?: Float32Array[]; batch: RankBatch; seed: number }
  | { type: 'close' };

export type ThreadReply =
  | { type: 'ready' }
  | { type: 'grad'; loss: number; grads: Float32Array[]; rewards?: Float32Array }
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

if (parentPort) {
  const port = parentPort;
  let params: Params | undefined;
  let gpt: CausalLM | undefined;
  let rm: RewardModel | undefined;
  let names: string[] = [];
  port.on('message', async (m: ThreadRequest) => {
    try {
      if (m.type === 'close') {
        (rm ?? gpt)?.dispose();
        port.close();
        return;
      }
      if (m.type === 'init') {
        await initBackend(m.backend);
        names = m.names;
        if (m.adapter) {
          // the base as the main thread holds it (weights it does not hold, e.g. an untied head a
          // reward model never reads, are zeros), frozen, with the adapter on top
          const base = new Map(m.adapter.base.names.map((n, i) => [n, m.adapter!.base.weights[i]]));
          const weights = new Map(parameterShapes(m.config).map(([n, shape]) => [n, base.get(n) ?? new Float32Array(shape.reduce((a, x) => a * x, 1))]));
          gpt = createModel(m.config, weights, false);
          gpt.attachLora(new Lora(m.adapter.cfg, new Map(m.adapter.modules), 0));
        } else gpt = initModel(m.config, 0); // the real weights arrive with the first request
        if (m.head) rm = new RewardModel(gpt, new Float32Array(m.config.n_embd), new Float32Array(1));
        params = rm?.params ?? gpt.params;
        port.postMessage({ type: 'ready' } satisfies ThreadReply);
        return;
      }
      if (!params || !gpt) throw new Error('gradient thread used before init');
      if (m.weights) {
        const p = params;
        tf.tidy(() => names.forEach((n, i) => p.get(n)!.assign(tf.tensor(m.weights![i], p.get(n)!.shape))));
      }
      const rng = new Rng(m.seed);
      const r = m.type === 'rank' ? await rankLossAndGrads(rm!, m.batch, rng) : { ...lossAndGrads(gpt, m.batch, rng), rewards: undefined };
      const out = await Promise.all(names.map((n) => take(r.grads.get(n)!)));
      const loss = await takeScalar(r.value);
      port.postMessage({ type: 'grad', loss, grads: out, rewards: r.rewards } satisfies ThreadReply, out.map((a) => a.buffer as ArrayBuffer));
    } catch (e) {
      port.postMessage({ type: 'error', message: (e as Error).message } satisfies ThreadReply);
    }
  });
}
