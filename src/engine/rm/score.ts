/** Scores of whole sequences under a reward model, in chunks that bound attention's memory. */
import * as tf from '@tensorflow/tfjs-core';
import { take } from '../read';
import { RewardModel } from './reward-model';

/** Rewards of many sequences, a chunk at a time (no gradient). */
export async function scoreSequences(rm: RewardModel, seqs: number[][], pad: number, chunk = 64): Promise<Float32Array> {
  const out = new Float32Array(seqs.length);
  for (let i = 0; i < seqs.length; ) {
    // at most `chunk` sequences and about 8,192 tokens at a time: attention is [sequences x heads, T, T]
    const longest = Math.max(...seqs.slice(i, i + chunk).map((s) => s.length));
    const n = Math.max(1, Math.min(chunk, Math.floor(8192 / longest)));
    const part = seqs.slice(i, i + n);
    const T = Math.max(...part.map((s) => s.length));
    const ids = new Int32Array(part.length * T).fill(pad);
    part.forEach((s, n) => ids.set(s, n * T));
    const r = await take(tf.tidy(() => rm.rewards(tf.tensor2d(ids, [part.length, T], 'int32'), part.map((s) => s.length - 1))));
    out.set(r, i);
    i += part.length;
  }
  return out;
}
