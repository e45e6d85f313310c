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
/** From this vocabulary size on, the head's logits are made a chunk of rows at a time. */
export const LARGE_VOCAB = 4096;

/** The weights the model's head reads: its own, or the embedding it is tied to. */
function headVars(model: CausalLM): tf.Variable[] {
  const own = model.params.get('lm_head.weight');
  const v = own ?? model.params.get('embed_tokens.weight') ?? model.params.get('wte.weight');
  return v && v.trainable ? [v] : [];
}

/**
 * The backward pass of a chunked head op: each chunk of the saved hidden states recomputed under
 * its own tape; `loss(hc, chunk)` is the chunk's part times the incoming gradient. Returns the
 * gradient of the hidden states (the chunks' concatenated) and the sum of the head weights'.
 */
function chunkGrads(hs: tf.Tensor, chunks: number[][], vars: tf.Variable[], loss: (hc: tf.Tensor2D, chunk: number[]) => tf.Scalar): tf.Tensor[] {
  const dh: tf.Tensor[] = [];
  const dw = vars.map((v) => tf.zerosLike(v) as tf.Tensor);
  for (const c of chunks) {
    const xv = tf.variable(tf.slice(hs, [c[0], 0], [c[1], -1]), true);
    const grads = innerVariableGrads(() => loss(xv as unknown as tf.Tensor2D, c), [xv, ...vars]);
    dh.push(grads[xv.name]);
    vars.forEach((v, k) => {
      const g = grads[v.name];
      if (g) {
        const sum = tf.add(dw[k], g);
        tf.dispose([dw[k], g]);
        dw[k] = sum;
      }
    });
    xv.dispose();
  }
  return [tf.concat(dh, 0), ...dw];
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
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        chunkGrads(saved[0], chunks, vars, (hc, c) => tf.mul(chunkLoss(hc, c, saved[1], saved[2]), dy) as tf.Scalar),
    };
  }) as Parameters<typeof tf.customGrad>[0]);
  return f(h, ...vars) as tf.Scalar;
}

/**
 * Each position's log-probability of the next token [N, T] (and, without a gradient, the
 * entropy of its distribution) for a large vocabulary, in chunks of rows as one op that keeps
 * only the hidden states, as lmLoss does: what PPO's and GRPO's updates read. The values are
 * log_softmax's own steps, (x - max) - log(sum(exp(x - max))), at the next token.
 */
export function chunkedTokenLogps(model: CausalLM, ids: tf.Tensor2D, temperature?: number): { logp: tf.Tensor2D; entropy: tf.Tensor2D };
export function chunkedTokenLogps(model: CausalLM, ids: tf.Tensor2D, temperature: number, withEntropy: false): { logp: tf.Tensor2D };
export function chunkedTokenLogps(model: CausalLM, ids: tf.Tensor2D, temperature = 1, withEntropy = true): { logp: tf.Tensor2D; entropy?: tf.Tensor2D } {
  const [N, T] = ids.shape;
  const V = model.config.vocab_size;
  const next = tf.reshape(tf.concat([tf.slice(ids, [0, 1], [N, T - 1]), tf.zeros([N, 1], 'int32')], 1), [N * T]);
  const h = model.hidden(ids);
  const n = N * T;
  const chunks = Array.from({ length: Math.ceil(n / CHUNK_ROWS) }, (_, i) => [i * CHUNK_ROWS, Math.min(n, (i + 1) * CHUNK_ROWS) - i * CHUNK_ROWS]);
  const shiftedOf = (hc: tf.Tensor2D) => {
    const logits = temperature === 1 ? model.lmHead(hc) : tf.div(model.lmHead(hc), temperature);
    const shifted = tf.sub(logits, tf.max(logits, 1, true));
    return { shifted, lse: tf.log(tf.sum(tf.exp(shifted), 1)) };
  };
  const chunkLogp = (hc: tf.Tensor2D, [start, size]: number[], nx: tf.Tensor) => {
    const { shifted, lse } = shiftedOf(hc);
    const at = tf.add(tf.mul(tf.range(0, size, 1, 'int32'), tf.scalar(V, 'int32')), tf.slice(nx, [start], [size]));
    return tf.sub(tf.gather(tf.reshape(shifted, [size * V]), at), lse);
  };
  // the entropy is logged, not trained: made inside the op's forward pass, which the tape does not record
  const entropyOf = (hc: tf.Tensor2D) => {
    const { shifted, lse } = shiftedOf(hc);
    const logp = tf.sub(shifted, tf.reshape(lse, [hc.shape[0], 1]));
    return tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), 1));
  };
  let entropyKept: tf.Tensor | undefined;
  const vars = headVars(model);
  const f = tf.customGrad(((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const hs = args[0] as tf.Tensor2D;
    save([hs, next]);
    const value = tf.concat(chunks.map((c) => tf.tidy(() => chunkLogp(tf.slice(hs, [c[0], 0], [c[1], -1]) as tf.Tensor2D, c, next))), 0);
    if (withEntropy) entropyKept = tf.keep(tf.concat(chunks.map((c) => tf.tidy(() => entropyOf(tf.slice(hs, [c[0], 0], [c[1], -1]) as tf.Tensor2D))), 0));
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        chunkGrads(saved[0], chunks, vars, (hc, c) => tf.sum(tf.mul(chunkLogp(hc, c, saved[1]), tf.slice(dy, [c[0]], [c[1]]))) as tf.Scalar),
    };
  }) as Parameters<typeof tf.customGrad>[0]);
  const logp = tf.reshape(f(h, ...vars), [N, T]) as tf.Tensor2D;
  if (!entropyKept) return { logp };
  const entropy = tf.reshape(entropyKept, [N, T]) as tf.Tensor2D; // a new tensor the caller's scope owns
  entropyKept.dispose();
  return { logp, entropy };
}
