/** Scores of whole sequences under a reward model, in chunks that bound attention's memory. */
import * as tf from '@tensorflow/tfjs-core';
import { alternate, concatArrays, take } from '../read';
import { RewardModel } from './reward-model';

/**
 * Rewards of many sequences, a chunk at a time (no gradient): at most `chunk` sequences and about
 * 8,192 tokens, as attention is [sequences x heads, T, T]. `helper`, a copy of the same model on
 * another thread, scores every other chunk meanwhile; a chunk is scored as the same batch either
 * way (a chunk fits the rule on its own), so the numbers are one thread's.
 */
export async function scoreSequences(rm: RewardModel, seqs: number[][], pad: number, chunk = 64, helper?: (part: number[][]) => Promise<Float32Array>): Promise<Float32Array> {
  const parts: number[][][] = [];
  for (let i = 0; i < seqs.length; ) {
    const longest = Math.max(...seqs.slice(i, i + chunk).map((s) => s.length));
    const n = Math.max(1, Math.min(chunk, Math.floor(8192 / longest)));
    parts.push(seqs.slice(i, i + n));
    i += n;
  }
  return concatArrays(await alternate(parts, (part) => scoreBatch(rm, part, pad), helper));
}

/** The rewards of sequences padded into one batch, each read at its last token. */
async function scoreBatch(rm: RewardModel, part: number[][], pad: number): Promise<Float32Array> {
  const T = Math.max(...part.map((s) => s.length));
  const ids = new Int32Array(part.length * T).fill(pad);
  part.forEach((s, n) => ids.set(s, n * T));
  return take(tf.tidy(() => rm.rewards(tf.tensor2d(ids, [part.length, T], 'int32'), part.map((s) => s.length - 1))));
}
