/**
 * What the RL stages (PPO, GRPO, RLOO) share: sampling a batch of responses from the policy, the
 * mask of the positions that predict a response token, and per-token log-probabilities at the
 * sampling temperature.
 */
import * as tf from '@tensorflow/tfjs-core';
import { chunkedTokenLogps } from '../train/lm-loss';
import { CausalLM } from '../causal-lm';
import { Tokenizer } from '../tokenizer';
import { generateMany } from '../generate';
import { PpoPrompt, toPpoPrompt } from '../../data/ppo';
import { readRecords } from '../../data/jsonl';
import { assertFile } from '../stages/common';
import { encodeContext } from '../chat';

export interface Rollout {
  /** Padded token ids [N, T] of context + response. */
  ids: Int32Array;
  N: number;
  T: number;
  /** Per sequence: first response position P, response length L (end-of-text included when it ended). */
  start: number[];
  len: number[];
  finished: boolean[];
  responses: string[];
  contexts: number[][];
}

/**
 * log pi(ids[t+1] | ids[..t]) at every position t [N, T] (the last column is padding), and per-position
 * entropy, from the logits divided by the sampling temperature: the distribution the sampler drew from.
 */
export function tokenLogps(model: CausalLM, ids: tf.Tensor2D, withEntropy = false, temperature = 1): { logp: tf.Tensor2D; entropy?: tf.Tensor2D } {
  const [N, T] = ids.shape;
  // a large vocabulary's update: the head in chunks that keep only the hidden states (lm-loss.ts)
  if (withEntropy && model.config.vocab_size >= 4096) return chunkedTokenLogps(model, ids, temperature);
  const logits = temperature === 1 ? model.logits(ids) : tf.div(model.logits(ids), temperature);
  const next = tf.concat([tf.slice(ids, [0, 1], [N, T - 1]), tf.zeros([N, 1], 'int32')], 1);
  if (!withEntropy) {
    // log_softmax's own steps, (x - max) - log(sum(exp(x - max))), with the next token's value
    // gathered rather than picked by a one-hot product: the same numbers without two more
    // [N T, vocabulary] tensors (at a 49,152-token vocabulary, 350 MB each for a 16 x 110 rollout)
    const V = model.config.vocab_size;
    const shifted = tf.sub(logits, tf.max(logits, 1, true));
    const lse = tf.log(tf.sum(tf.exp(shifted), 1));
    const at = tf.add(tf.mul(tf.range(0, N * T, 1, 'int32'), tf.scalar(V, 'int32')), tf.reshape(next, [N * T]));
    return { logp: tf.reshape(tf.sub(tf.gather(tf.reshape(shifted, [N * T * V]), at), lse), [N, T]) as tf.Tensor2D };
  }
  const logp = tf.logSoftmax(logits);
  const picked = tf.sum(tf.mul(logp, tf.oneHot(tf.reshape(next, [N * T]), model.config.vocab_size)), 1);
  const out: { logp: tf.Tensor2D; entropy?: tf.Tensor2D } = { logp: tf.reshape(picked, [N, T]) as tf.Tensor2D };
  if (withEntropy) out.entropy = tf.reshape(tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), 1)), [N, T]) as tf.Tensor2D;
  return out;
}

/** The positions whose next-token prediction is a response token: P-1 .. P+L-2 (mask [N, T]). */
export function responseMask(r: Rollout): Float32Array {
  const m = new Float32Array(r.N * r.T);
  for (let n = 0; n < r.N; n++) for (let t = r.start[n] - 1; t < r.start[n] + r.len[n] - 1; t++) m[n * r.T + t] = 1;
  return m;
}

export function subset(r: Rollout, rows: number[]): Rollout {
  const ids = new Int32Array(rows.length * r.T);
  rows.forEach((n, i) => ids.set(r.ids.subarray(n * r.T, (n + 1) * r.T), i * r.T));
  const pick = <T>(a: T[]) => rows.map((n) => a[n]);
  return { ids, N: rows.length, T: r.T, start: pick(r.start), len: pick(r.len), finished: pick(r.finished), responses: pick(r.responses), contexts: pick(r.contexts) };
}

export function rowsOf(a: Float32Array, T: number, rows: number[]): Float32Array {
  const out = new Float32Array(rows.length * T);
  rows.forEach((n, i) => out.set(a.subarray(n * T, (n + 1) * T), i * T));
  return out;
}

/**
 * Samples `samples` responses to each prompt with the cached generator, each prompt's seed from
 * `seed(j)`, and lays them out as one padded batch (context + response, end-of-text included when
 * the response ended).
 */
export async function sampleRollout(policy: CausalLM, tok: Tokenizer, prompts: PpoPrompt[], o: { samples: number; maxNewTokens: number; temperature: number; seed: (j: number) => number; threads?: number }): Promise<Rollout> {
  const Npos = policy.config.n_positions;
  const seqs: number[][] = [], start: number[] = [], len: number[] = [], finished: boolean[] = [], responses: string[] = [], contexts: number[][] = [];
  // every prompt's samples decoded as one batch, each sequence stopping on its own
  const ctxs = prompts.map((p) => encodeContext(tok, p).slice(-(Npos - 8))); // leave room for a response
  const gens = await generateMany(policy, ctxs.map((ctx, j) => ({ prompt: ctx, samples: o.samples, seed: o.seed(j), maxNewTokens: Math.min(o.maxNewTokens, Npos - ctx.length - 1) })), { temperature: o.temperature, topK: 0, topP: 1, eot: tok.eot, threads: o.threads });
  for (const [j, g] of gens.entries()) {
    const ctx = ctxs[j];
    g.tokens.forEach((t, s) => {
      const resp = g.finished[s] ? [...t, tok.eot] : t;
      if (!resp.length) resp.push(tok.eot);
      seqs.push([...ctx, ...resp]);
      start.push(ctx.length);
      len.push(resp.length);
      finished.push(g.finished[s]);
      responses.push(tok.decode(t));
      contexts.push(ctx);
    });
  }
  const T = Math.max(...seqs.map((s) => s.length));
  const ids = new Int32Array(seqs.length * T).fill(tok.eot);
  seqs.forEach((s, n) => ids.set(s, n * T));
  return { ids, N: seqs.length, T, start, len, finished, responses, contexts };
}

/** The prompts of an RL stage (a PPO prompt file); a bad record stops the stage before anything is written. */
export function readPrompts(file: string): PpoPrompt[] {
  assertFile(file, 'PPO prompts');
  const { items, problems } = readRecords(file, toPpoPrompt);
  if (problems.length) throw new Error(`${problems.length} bad record(s) in the PPO prompts; the first: ${problems[0]}`);
  if (!items.length) throw new Error(`${file} has no prompts`);
  return items;
}
