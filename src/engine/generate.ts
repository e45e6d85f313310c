/**
 * Sampling from a CausalLM: temperature, top-k, top-p (nucleus), a token budget, stop at
 * end-of-text, seeded. With the key/value cache each new token costs one position; without it
 * every token re-reads the whole (cropped) context. Both give the same tokens under a seed.
 */
import * as tf from '@tensorflow/tfjs-core';
import { KVCache, disposeCache } from './model';
import { CausalLM } from './causal-lm';
import { Rng } from './rng';
import { take } from './read';
import { FusedDecoder } from './decode';

export interface SampleOptions {
  maxNewTokens: number;
  /** 0 means greedy. */
  temperature: number;
  /** Keep the k most likely tokens (0 = all). */
  topK: number;
  /** Keep the smallest set of tokens whose probability reaches p (1 = all). */
  topP: number;
  seed: number;
  /** Stop a sequence at this token (not included in the output). */
  eot?: number;
  useCache?: boolean;
  /** Threads for the fused decoder's steps (0 or absent: both cores where there are two). */
  threads?: number;
  /** Called after every new token with the tokens so far (for streaming to a UI). */
  onStep?: (tokens: number[][], finished: boolean[]) => void;
}

/** Prompts up to this many tokens are read by the fused decoder position by position. */
const SHORT_PROMPT = 8;

export const DEFAULT_SAMPLE: SampleOptions = { maxNewTokens: 128, temperature: 0.8, topK: 0, topP: 1, seed: 1, useCache: true };

/** Draws one token id from logits (float32, length V). */
export function sampleToken(logits: Float32Array, o: Pick<SampleOptions, 'temperature' | 'topK' | 'topP'>, rng: Rng): number {
  const V = logits.length;
  if (o.temperature <= 0) {
    let best = 0;
    for (let i = 1; i < V; i++) if (logits[i] > logits[best]) best = i;
    return best;
  }
  if (!(o.topK > 0 && o.topK < V) && !(o.topP < 1)) {
    // every token: the loop below without its arrays (a 49k vocabulary at every step), same sums in the same order
    let max = -Infinity;
    for (let i = 0; i < V; i++) max = Math.max(max, logits[i] / o.temperature);
    let sum = 0;
    for (let i = 0; i < V; i++) sum += Math.exp(logits[i] / o.temperature - max);
    let u = rng.next() * sum;
    for (let i = 0; i < V; i++) {
      u -= Math.exp(logits[i] / o.temperature - max);
      if (u <= 0) return i;
    }
    return V - 1;
  }
  let idx = Array.from({ length: V }, (_, i) => i);
  if ((o.topK > 0 && o.topK < V) || o.topP < 1) {
    idx.sort((a, b) => logits[b] - logits[a] || a - b);
    if (o.topK > 0 && o.topK < V) idx = idx.slice(0, o.topK);
  }
  let max = -Infinity;
  for (const i of idx) max = Math.max(max, logits[i] / o.temperature);
  const p = idx.map((i) => Math.exp(logits[i] / o.temperature - max));
  let sum = p.reduce((a, b) => a + b, 0);
  if (o.topP < 1) {
    let cum = 0, keep = idx.length;
    for (let j = 0; j < idx.length; j++) {
      cum += p[j] / sum;
      if (cum >= o.topP) {
        keep = j + 1;
        break;
      }
    }
    idx = idx.slice(0, keep);
    p.length = keep;
    sum = p.reduce((a, b) => a + b, 0);
  }
  let u = rng.next() * sum;
  for (let j = 0; j < idx.length; j++) {
    u -= p[j];
    if (u <= 0) return idx[j];
  }
  return idx[idx.length - 1];
}

export interface Generation {
  /** New tokens per sample, without the prompt and without the end-of-text token. */
  tokens: number[][];
  /** Whether each sample ended with end-of-text (rather than the token budget). */
  finished: boolean[];
  seconds: number;
  /** Threads the decoding steps ran on (2: the batch split over both cores; 1 also for the op path). */
  threads: number;
}

/**
 * `numSamples` continuations of one prompt, sampled as one batch. Sample i draws from its own
 * generator seeded with seed + i, so a sample does not depend on how many are drawn with it.
 */
export async function generate(model: CausalLM, prompt: number[], numSamples: number, o: SampleOptions): Promise<Generation> {
  if (!prompt.length) throw new Error('the prompt has no tokens');
  const t0 = performance.now();
  const N = model.config.n_positions;
  const B = numSamples;
  const seqs = Array.from({ length: B }, () => [...prompt]);
  const out: number[][] = Array.from({ length: B }, () => []);
  const finished = new Array<boolean>(B).fill(false);
  const rngs = Array.from({ length: B }, (_, i) => new Rng(o.seed + i));
  const cache: KVCache | undefined = o.useCache === false ? undefined : { k: [], v: [], length: 0 };
  let fed = 0; // tokens of seqs already in the cache
  // after the prompt has filled the cache: one new position per step through the fused kernels
  let decoder: FusedDecoder | undefined;
  let threads = 1;
  const reach = Math.min(N, prompt.length + o.maxNewTokens); // the positions the decoder's cache will hold
  try {
    for (let step = 0; step < o.maxNewTokens && !finished.every(Boolean); step++) {
      const len = seqs[0].length;
      let data: Float32Array;
      // a short prompt goes through the decoder too, one position at a time (cheaper than the ops' pass)
      if (step === 0 && cache && len <= SHORT_PROMPT && len < N) decoder = FusedDecoder.from(model, B, cache, reach, o.threads || undefined);
      if (decoder && len <= decoder.maxLength) {
        for (let pos = step === 0 ? 0 : len - 1; pos < len - 1; pos++) decoder.step(seqs.map((s) => s[pos]), pos);
        data = decoder.step(seqs.map((s) => s[len - 1]), len - 1);
      } else {
        const logits = tf.tidy(() => {
          let input: number[][];
          if (cache && len <= N) {
            input = seqs.map((s) => s.slice(fed)); // only what the cache has not seen
          } else {
            // Context full (or no cache): crop to the last N tokens and recompute from position 0.
            if (cache) disposeCache(cache);
            input = seqs.map((s) => s.slice(Math.max(0, len - N)));
          }
          const T = input[0].length;
          const ids = tf.tensor2d(input.flat(), [B, T], 'int32');
          const h = model.hidden(ids, { cache });
          const last = tf.reshape(tf.slice(tf.reshape(h, [B, T, -1]), [0, T - 1, 0], [B, 1, -1]), [B, -1]) as tf.Tensor2D;
          return model.lmHead(last);
        });
        fed = len;
        data = await take(logits);
        if (cache && !decoder && cache.length === len && len < N) {
          decoder = FusedDecoder.from(model, B, cache, reach, o.threads || undefined);
          if (decoder) disposeCache(cache); // the decoder holds its own copy
        }
      }
      const V = data.length / B;
      for (let i = 0; i < B; i++) {
        const next = sampleToken(data.subarray(i * V, (i + 1) * V), o, rngs[i]);
        seqs[i].push(next);
        if (finished[i]) continue;
        if (o.eot !== undefined && next === o.eot) finished[i] = true;
        else out[i].push(next);
      }
      o.onStep?.(out, finished);
    }
  } finally {
    disposeCache(cache);
    threads = decoder?.threads ?? 1;
    decoder?.dispose();
  }
  return { tokens: out, finished, seconds: (performance.now() - t0) / 1000, threads };
}

/** One prompt's share of a batched generation: `samples` continuations, sample i seeded seed + i. */
export interface GenerationRequest {
  prompt: number[];
  samples: number;
  seed: number;
  maxNewTokens: number;
}

/**
 * Several prompts' samples decoded together, as one batch of sequences each at its own position
 * (prompts of different lengths; a sequence stops at end-of-text or its budget while the others go
 * on): what an RL stage's rollout asks for. Sample i of a request draws from Rng(seed + i), as
 * generate() does, so a sample does not depend on what is decoded beside it. Through the fused
 * decoder where it serves; else one generate() per request.
 */
export async function generateMany(model: CausalLM, requests: GenerationRequest[], o: Pick<SampleOptions, 'temperature' | 'topK' | 'topP' | 'eot' | 'threads'>): Promise<Generation[]> {
  const N = model.config.n_positions;
  for (const r of requests) {
    if (!r.prompt.length) throw new Error('the prompt has no tokens');
    if (r.prompt.length + r.maxNewTokens > N) throw new Error(`a prompt of ${r.prompt.length} tokens and ${r.maxNewTokens} new ones exceed the context of ${N}`);
  }
  const B = requests.reduce((n, r) => n + r.samples, 0);
  const reach = Math.max(...requests.map((r) => r.prompt.length + r.maxNewTokens));
  const decoder = B > 0 ? FusedDecoder.from(model, B, { k: [], v: [], length: 0 }, reach, o.threads || undefined) : undefined;
  if (!decoder) {
    const out: Generation[] = [];
    for (const r of requests) out.push(await generate(model, r.prompt, r.samples, { ...o, maxNewTokens: r.maxNewTokens, seed: r.seed, useCache: true }));
    return out;
  }
  const t0 = performance.now();
  const rows = requests.flatMap((r, j) => Array.from({ length: r.samples }, (_, i) => ({ j, seq: [...r.prompt], cursor: 0, rng: new Rng(r.seed + i), out: [] as number[], finished: false, done: r.maxNewTokens === 0 })));
  try {
    while (!rows.every((r) => r.done)) {
      // each row feeds its next unread token: a prompt token, or the one it sampled last
      const ids = rows.map((r) => r.seq[Math.min(r.cursor, r.seq.length - 1)]);
      const positions = rows.map((r) => Math.min(r.cursor, r.seq.length - 1));
      const logits = decoder.step(ids, positions);
      const V = logits.length / B;
      rows.forEach((r, b) => {
        if (r.done) return;
        r.cursor += 1;
        if (r.cursor < r.seq.length) return; // still reading its prompt
        const next = sampleToken(logits.subarray(b * V, (b + 1) * V), o, r.rng);
        r.seq.push(next);
        if (o.eot !== undefined && next === o.eot) r.finished = true;
        else r.out.push(next);
        if (r.finished || r.out.length >= requests[r.j].maxNewTokens) r.done = true;
      });
    }
  } finally {
    decoder.dispose();
  }
  const seconds = (performance.now() - t0) / 1000;
  return requests.map((_, j) => {
    const mine = rows.filter((r) => r.j === j);
    return { tokens: mine.map((r) => r.out), finished: mine.map((r) => r.finished), seconds, threads: decoder.threads };
  });
}

/** log p(tokens[i+1] | tokens[0..i]) for i = 0..n-2, in one forward pass. */
export async function tokenLogprobs(model: CausalLM, tokens: number[]): Promise<number[]> {
  const n = tokens.length;
  if (n < 2) return [];
  if (n > model.config.n_positions) throw new Error(`the text has ${n} tokens; the model reads at most ${model.config.n_positions}`);
  const picked = tf.tidy(() => {
    const logp = tf.logSoftmax(model.logits(tf.tensor2d([tokens], [1, n], 'int32')));
    return tf.sum(tf.mul(tf.slice(logp, [0, 0], [n - 1, -1]), tf.oneHot(tf.tensor1d(tokens.slice(1), 'int32'), model.config.vocab_size)), 1);
  });
  return Array.from(await take(picked));
}
