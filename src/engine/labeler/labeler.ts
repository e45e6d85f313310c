/**
 * A simulated labeler: ranks K responses to a prompt by the gold score, as a person ranks model
 * outputs in the ranking panel. Optional Gaussian noise on the scores (a labeler's inconsistency)
 * and ties (responses whose scores differ by at most `tieWithin` share a rank). Writes records in
 * the spec's K-way format, so the reward model learns from rankings alone.
 */
import { Rng } from '../rng';
import { goldScore } from './gold';

export interface LabelerOptions {
  /** Standard deviation of the noise added to each gold score before ranking. */
  noise: number;
  /** Scores within this distance (after noise) tie. 0: ties only for equal scores. */
  tieWithin: number;
  annotator: string;
}

export const DEFAULT_LABELER: LabelerOptions = { noise: 0.5, tieWithin: 0, annotator: 'simulated-afinn' };

/** Dense ranks (1 = best) of scores, higher is better; near-equal scores share a rank. */
export function ranksFromScores(scores: number[], tieWithin: number): number[] {
  const order = scores.map((s, i) => [s, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  const ranks = new Array<number>(scores.length);
  let rank = 0, prev = Infinity;
  for (const [s, i] of order) {
    if (prev - s > tieWithin || rank === 0) rank++;
    ranks[i] = rank;
    prev = s;
  }
  return ranks;
}

export function labelRecord(prompt: string, responses: string[], rng: Rng, o: LabelerOptions = DEFAULT_LABELER, extra: Record<string, unknown> = {}) {
  const scores = responses.map((r) => goldScore(r) + (o.noise > 0 ? o.noise * rng.normal() : 0));
  return {
    prompt,
    responses,
    ranks: ranksFromScores(scores, o.tieWithin),
    annotator: o.annotator,
    ...extra,
  };
}
