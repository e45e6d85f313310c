/**
 * A gradient replica on another core (worker_threads). The wasm backend runs one thread per
 * process, so data parallelism is how training uses a second core: this thread holds a copy of
 * the model, receives the current weights and its share of the batch, and returns its loss and
 * gradients. The main thread averages them and takes the optimizer step.
 */
import { parentPort } from 'worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { BackendName, initBackend } from '../backends/backend';
import { GPT } from '../model';
import { GPTConfig } from '../config';
import { Rng } from '../rng';
import { crossEntropy } from '../layers';
import { Batch } from './trainer';

export type ThreadRequest =
  | { type: 'init'; backend: BackendName; config: GPTConfig; names: string[] }
  | { type: 'grad'; weights?: Float32Array[]; batch: Batch; seed: number }
  | { type: 'close' };

export type ThreadReply =
  | { type: 'ready' }
  | { type: 'grad'; loss: number; grads: Float32Array[] }
  | { type: 'error'; message: string };

export function lossAndGrads(model: GPT, b: Batch, rng: Rng): { value: tf.Scalar; grads: Map<string, tf.Tensor> } {
  const vars = [...model.params.values()].filter((v) => v.trainable);
  const byVar = new Map([...model.params].map(([n, v]) => [v.name, n]));
  const { value, grads } = tf.tidy(() => {
    const ids = tf.tensor2d(b.ids, [b.B, b.T], 'int32');
    const targets = tf.tensor1d(b.targets, 'int32');
    const weights = tf.tensor1d(b.weights, 'float32');
    return tf.variableGrads(() => crossEntropy(model.logits(ids, { training: true, rng }), targets, weights), vars);
  });
  return { value, grads: new Map(Object.entries(grads).map(([k, g]) => [byVar.get(k)!, g])) };
}

if (parentPort) {
  const port = parentPort;
  let model: GPT | undefined;
  let names: string[] = [];
  port.on('message', async (m: ThreadRequest) => {
    try {
      if (m.type === 'close') {
        model?.dispose();
        port.close();
        return;
      }
      if (m.type === 'init') {
        await initBackend(m.backend);
        names = m.names;
        model = GPT.init(m.config, 0); // the real weights arrive with the first request
        port.postMessage({ type: 'ready' } satisfies ThreadReply);
        return;
      }
      if (!model) throw new Error('gradient thread used before init');
      if (m.weights) {
        const mdl = model;
        tf.tidy(() => names.forEach((n, i) => mdl.p(n).assign(tf.tensor(m.weights![i], mdl.p(n).shape))));
      }
      const { value, grads } = lossAndGrads(model, m.batch, new Rng(m.seed));
      const out = names.map((n) => grads.get(n)!.dataSync() as Float32Array);
      const loss = value.dataSync()[0];
      tf.dispose([value, ...grads.values()]);
      port.postMessage({ type: 'grad', loss, grads: out } satisfies ThreadReply, out.map((a) => a.buffer as ArrayBuffer));
    } catch (e) {
      port.postMessage({ type: 'error', message: (e as Error).message } satisfies ThreadReply);
    }
  });
}
