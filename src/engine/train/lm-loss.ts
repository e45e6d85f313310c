/**
 * The next-token loss of a batch. With a large vocabulary the logits dominate a step's memory
 * ([tokens, vocabulary] floats, several times over: logits, log-softmax, their gradient), so the
 * head and the cross-entropy run in chunks of rows as one op that keeps only the hidden states:
 * the backward pass recomputes each chunk's logits (as Liger's fused linear cross-entropy does).
 * At 1,024 tokens of a 49,152-token vocabulary that is 200 MB per chunk of 256 rows instead of
 * about 2 GB. Small vocabularies (the character models) take the plain path they always had.
 */
import * as tf from '@tensorflow/tfjs-core';
import { CausalLM } from '../causal-lm';
import { crossEntropy, innerVariableGrads } from '../layers';
import { ForwardOptions } from '../model';

const CHUNK_ROWS = 256;
const LARGE_VOCAB = 4096;

/** The weights the model's head reads: its own, or the embedding it is tied to. */
function headVars(model: CausalLM): tf.Variable[] {
  const own = model.params.get('lm_head.weight');
  const v = own ?? model.params.get('embed_tokens.weight') ?? model.params.get('wte.weight');
  return v && v.trainable ? [v] : [];
}

export function lmLoss(model: CausalLM, ids: tf.Tensor2D, targets: tf.Tensor1D, weights: tf.Tensor1D, opts: ForwardOptions = {}): tf.Scalar {
  if (model.config.vocab_size < LARGE_VOCAB) return crossEntropy(model.logits(ids, opts), targets, weights);
  const h = model.hidden(ids, opts);
  const n = h.shape[0];
  const wn = tf.div(weights, tf.maximum(tf.sum(weights), 1e-12)); // each row's share of the mean
  const chunks = Array.from({ length: Math.ceil(n / CHUNK_ROWS) }, (_, i) => [i * CHUNK_ROWS, Math.min(n, (i + 1) * CHUNK_ROWS) - i * CHUNK_ROWS]);
  // the chunk's weighted loss, as a share of the whole batch's mean (weights summing to 1 overall)
  const chunkLoss = (hc: tf.Tensor2D, [start, size]: number[], t: tf.Tensor, wAll: tf.Tensor) => {
    const w = tf.slice(wAll, [start], [size]);
    return tf.mul(crossEntropy(model.lmHead(hc), tf.slice(t, [start], [size]) as tf.Tensor1D, w as tf.Tensor1D), tf.sum(w)) as tf.Scalar;
  };
  const vars = headVars(model);
  const f = tf.customGrad(((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const hs = args[0] as tf.Tensor2D;
    // the backward pass reads only what goes through save(): the engine disposes the rest
    save([hs, targets, wn]);
    let total: tf.Scalar = tf.scalar(0);
    for (const c of chunks) total = tf.tidy(() => tf.add(total, chunkLoss(tf.slice(hs, [c[0], 0], [c[1], -1]) as tf.Tensor2D, c, targets, wn))) as tf.Scalar;
    return {
      value: total,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const dh: tf.Tensor[] = [];
        const dw = vars.map((v) => tf.zerosLike(v) as tf.Tensor);
        for (const c of chunks) {
          const xv = tf.variable(tf.slice(saved[0], [c[0], 0], [c[1], -1]), true);
          const grads = innerVariableGrads(() => tf.mul(chunkLoss(xv as unknown as tf.Tensor2D, c, saved[1], saved[2]), dy) as tf.Scalar, [xv, ...vars]);
          dh.push(grads[xv.name]);
          vars.forEach((v, k) => {
            const g = grads[v.name];
            if (g) {
              const next = tf.add(dw[k], g);
              tf.dispose([dw[k], g]);
              dw[k] = next;
            }
          });
          xv.dispose();
        }
        return [tf.concat(dh, 0), ...dw];
      },
    };
  }) as Parameters<typeof tf.customGrad>[0]);
  return f(h, ...vars) as tf.Scalar;
}
