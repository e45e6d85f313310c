/**
 * Blind side-by-side evaluation: the votes and what they say.
 *
 * A vote compares one response of each of two models to the same prompt, shown in a random order
 * without names. Votes are RM records, so the same file can train a reward model or DPO later:
 *   - a preference is a pairwise record: {"prompt", "chosen", "rejected", "models": {"chosen",
 *     "rejected"}, ...};
 *   - a tie or "both bad" is a K = 2 ranking with equal ranks (it gives no comparison to a
 *     trainer): {"prompt", "responses": [left, right], "ranks": [1, 1], "models": [left, right],
 *     "flags": ["not_rankable"] for both bad, ...};
 * each with "annotator", "time_ms", "order" (the models as shown, left first), "seed" (of the
 * item's order) and "item" (its index in the evaluation).
 *
 * Results: each pair's win rate with a 95% Wilson interval (ties, "both bad" included, count half
 * a win to each side, or are left out), and with three or more models a Bradley–Terry rating per
 * model on the Elo scale, with bootstrap intervals. Pure: the host, the CLI and the tests use it.
 */

/** One vote, as the results see it: which two models, and who won (0.5 = tie or both bad). */
export interface Vote {
  /** The two models, in a fixed order (sorted by name). */
  a: string;
  b: string;
  /** 1 = a won, 0 = b won, 0.5 = a tie or both bad. */
  score: 1 | 0 | 0.5;
  bothBad?: boolean;
  annotator?: string;
  item?: number;
  /** The evaluation the vote belongs to (records name it). */
  evaluation?: string;
}

/** z for a two-sided 95% interval. */
const Z95 = 1.959963984540054;

/** Wilson's score interval for `successes` of `n` (successes may be fractional: ties as halves). */
export function wilson(successes: number, n: number, z = Z95): { p: number; low: number; high: number } {
  if (n <= 0) return { p: NaN, low: 0, high: 1 };
  const p = successes / n, z2 = z * z;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z / (1 + z2 / n)) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  return { p, low: Math.max(0, centre - half), high: Math.min(1, centre + half) };
}

export type TieRule = 'half' | 'exclude';

export interface PairResult {
  a: string;
  b: string;
  wins_a: number;
  wins_b: number;
  ties: number;
  both_bad: number;
  /** Votes counted in the win rate (all of them with ties as halves; without ties when excluded). */
  n: number;
  /** a's win rate against b, and its 95% Wilson interval. */
  win_rate: number;
  low: number;
  high: number;
}

export function pairResults(votes: Vote[], ties: TieRule = 'half'): PairResult[] {
  const by = new Map<string, PairResult>();
  for (const v of votes) {
    const key = `${v.a}\u0000${v.b}`;
    let r = by.get(key);
    if (!r) by.set(key, (r = { a: v.a, b: v.b, wins_a: 0, wins_b: 0, ties: 0, both_bad: 0, n: 0, win_rate: NaN, low: 0, high: 1 }));
    if (v.score === 1) r.wins_a++;
    else if (v.score === 0) r.wins_b++;
    else if (v.bothBad) r.both_bad++;
    else r.ties++;
  }
  for (const r of by.values()) {
    const even = r.ties + r.both_bad;
    r.n = ties === 'half' ? r.wins_a + r.wins_b + even : r.wins_a + r.wins_b;
    const w = wilson(r.wins_a + (ties === 'half' ? even / 2 : 0), r.n);
    Object.assign(r, { win_rate: w.p, low: w.low, high: w.high });
  }
  return [...by.values()].sort((x, y) => x.a.localeCompare(y.a) || x.b.localeCompare(y.b));
}

/**
 * Bradley–Terry strengths by maximum likelihood (Hunter's MM algorithm), ties as half a win to
 * each side, with one virtual tie between every pair of models (a weak prior that keeps a model
 * that never lost, or never won, finite). Returned on the Elo scale: P(i beats j) =
 * 1 / (1 + 10^((R_j - R_i) / 400)), the ratings' mean fixed at 1000.
 */
export function bradleyTerry(votes: Vote[], models: string[] = modelsOf(votes)): Map<string, number> {
  const M = models.length, idx = new Map(models.map((m, i) => [m, i]));
  // w[i][j]: wins of i over j, the prior's half included
  const w = Array.from({ length: M }, (_, i) => Array.from({ length: M }, (_, j) => (i === j ? 0 : 0.5)));
  for (const v of votes) {
    const i = idx.get(v.a), j = idx.get(v.b);
    if (i === undefined || j === undefined) continue;
    w[i][j] += v.score;
    w[j][i] += 1 - v.score;
  }
  let p = new Array(M).fill(1);
  for (let it = 0; it < 100_000; it++) {
    const next = p.map((pi, i) => {
      let wins = 0, denom = 0;
      for (let j = 0; j < M; j++) {
        if (j === i) continue;
        wins += w[i][j];
        denom += (w[i][j] + w[j][i]) / (pi + p[j]);
      }
      return wins / denom;
    });
    const g = Math.exp(next.reduce((s, x) => s + Math.log(x), 0) / M); // geometric mean 1
    const normed = next.map((x) => x / g);
    const change = Math.max(...normed.map((x, i) => Math.abs(Math.log(x / p[i]))));
    p = normed;
    if (change < 1e-12) break;
  }
  return new Map(models.map((m, i) => [m, 1000 + (400 * Math.log(p[i])) / Math.LN10]));
}

export function modelsOf(votes: Vote[]): string[] {
  return [...new Set(votes.flatMap((v) => [v.a, v.b]))].sort();
}

/** A small seeded generator for the bootstrap (mulberry32): the same votes give the same intervals. */
function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface RatingResult {
  model: string;
  rating: number;
  /** 95% percentile bootstrap interval (votes resampled with replacement). */
  low: number;
  high: number;
  votes: number;
}

export function ratings(votes: Vote[], o: { rounds?: number; seed?: number } = {}): RatingResult[] {
  const models = modelsOf(votes), point = bradleyTerry(votes, models);
  const rounds = o.rounds ?? 1000, rand = mulberry32(o.seed ?? 1);
  const samples = new Map(models.map((m) => [m, [] as number[]]));
  for (let r = 0; r < rounds && votes.length; r++) {
    const resampled = Array.from({ length: votes.length }, () => votes[Math.floor(rand() * votes.length)]);
    for (const [m, x] of bradleyTerry(resampled, models)) samples.get(m)!.push(x);
  }
  const q = (xs: number[], f: number) => {
    const s = [...xs].sort((x, y) => x - y);
    const at = f * (s.length - 1), lo = Math.floor(at);
    return s.length ? s[lo] + (s[Math.min(lo + 1, s.length - 1)] - s[lo]) * (at - lo) : NaN;
  };
  return models
    .map((m) => ({ model: m, rating: point.get(m)!, low: q(samples.get(m)!, 0.025), high: q(samples.get(m)!, 0.975), votes: votes.filter((v) => v.a === m || v.b === m).length }))
    .sort((x, y) => y.rating - x.rating);
}

export interface EvaluationSummary {
  votes: number;
  models: string[];
  ties: TieRule;
  pairs: PairResult[];
  /** With three or more models. */
  ratings?: RatingResult[];
  /** Per annotator (people and judges), the number of votes. */
  annotators: Record<string, number>;
}

export const isJudge = (annotator: string | undefined): boolean => !!annotator?.startsWith('judge:');

/**
 * People's verdict and each judge's, kept apart: the headline results are the people's votes (all
 * votes when only judges voted); each judge gets its own results and its agreement with the people
 * on the items both voted on.
 */
export function summarizeByVoter(votes: Vote[], ties: TieRule = 'half'): EvaluationSummary & { judges?: Record<string, EvaluationSummary & { agreement: { items: number; agree: number | null } }> } {
  const people = votes.filter((v) => !isJudge(v.annotator));
  const judges = [...new Set(votes.filter((v) => isJudge(v.annotator)).map((v) => v.annotator!))].sort();
  const main = summarize(people.length ? people : votes, ties);
  if (!people.length || !judges.length) return main;
  const PEOPLE = '\u0000people';
  const merged = votes.map((v) => (isJudge(v.annotator) ? v : { ...v, annotator: PEOPLE }));
  return {
    ...main,
    judges: Object.fromEntries(judges.map((j) => [j, { ...summarize(votes.filter((v) => v.annotator === j), ties), agreement: agreementOf(merged, PEOPLE, j) }])),
  };
}

export function summarize(votes: Vote[], ties: TieRule = 'half'): EvaluationSummary {
  const models = modelsOf(votes);
  const annotators: Record<string, number> = {};
  for (const v of votes) annotators[v.annotator ?? ''] = (annotators[v.annotator ?? ''] ?? 0) + 1;
  return { votes: votes.length, models, ties, pairs: pairResults(votes, ties), ...(models.length >= 3 ? { ratings: ratings(votes) } : {}), annotators };
}

/**
 * How often two annotators (a person and a judge, say) voted the same way on the items both
 * voted on: the fraction of shared items with the same outcome (win left, win right, or even).
 */
export function agreementOf(votes: Vote[], x: string, y: string): { items: number; agree: number | null } {
  // an item is known by its evaluation and index (several evaluations can share a file)
  const of = (who: string) => new Map(votes.filter((v) => v.annotator === who && v.item !== undefined).map((v) => [`${v.evaluation ?? ''}\u0000${v.item}`, v.score]));
  const vx = of(x), vy = of(y);
  let items = 0, same = 0;
  for (const [item, s] of vx) {
    if (!vy.has(item)) continue;
    items++;
    if (vy.get(item) === s) same++;
  }
  return { items, agree: items ? same / items : null };
}

// ---- records -------------------------------------------------------------------------------

export type Verdict = 'left' | 'right' | 'tie' | 'both_bad';

export interface VoteInput {
  prompt: string;
  /** The two responses and their models, as shown (left first). */
  left: { model: string; response: string };
  right: { model: string; response: string };
  verdict: Verdict;
  annotator: string;
  timeMs?: number;
  seed: number;
  item: number;
  createdAt?: Date;
  comment?: string;
  flags?: string[];
  id?: string;
}

/** The RM record of a vote (see the top of this file). */
export function voteRecord(v: VoteInput): Record<string, unknown> {
  const common = {
    annotator: v.annotator,
    ...(v.timeMs !== undefined ? { time_ms: v.timeMs } : {}),
    ...(v.createdAt ? { created_at: v.createdAt.toISOString() } : {}),
    order: [v.left.model, v.right.model],
    seed: v.seed,
    item: v.item,
    ...(v.comment ? { comment: v.comment } : {}),
    ...(v.id ? { id: v.id } : {}),
  };
  if (v.verdict === 'left' || v.verdict === 'right') {
    const [w, l] = v.verdict === 'left' ? [v.left, v.right] : [v.right, v.left];
    return { prompt: v.prompt, chosen: w.response, rejected: l.response, models: { chosen: w.model, rejected: l.model }, ...(v.flags?.length ? { flags: v.flags } : {}), ...common };
  }
  const flags = [...new Set([...(v.verdict === 'both_bad' ? ['not_rankable'] : []), ...(v.flags ?? [])])];
  return { prompt: v.prompt, responses: [v.left.response, v.right.response], ranks: [1, 1], models: [v.left.model, v.right.model], flags, ...common };
}

/** The vote in an evaluation record, or undefined when the record is not one (no model names). */
export function voteOf(r: Record<string, unknown>): Vote | undefined {
  const annotator = typeof r.annotator === 'string' ? r.annotator : undefined;
  const item = Number.isSafeInteger(r.item) ? (r.item as number) : undefined;
  const m = r.models;
  if (typeof r.chosen === 'string' && typeof r.rejected === 'string' && m && typeof m === 'object' && !Array.isArray(m)) {
    const { chosen, rejected } = m as Record<string, unknown>;
    if (typeof chosen !== 'string' || typeof rejected !== 'string' || chosen === rejected) return undefined;
    return chosen < rejected ? { a: chosen, b: rejected, score: 1, annotator, item } : { a: rejected, b: chosen, score: 0, annotator, item };
  }
  if (Array.isArray(r.responses) && Array.isArray(r.ranks) && Array.isArray(m) && m.length === 2 && r.ranks.length === 2) {
    const [x, y] = m;
    if (typeof x !== 'string' || typeof y !== 'string' || x === y) return undefined;
    const [rx, ry] = r.ranks as number[];
    const flags = Array.isArray(r.flags) ? r.flags : [];
    const bothBad = flags.includes('not_rankable');
    const [a, b, aWon] = x < y ? [x, y, rx < ry] : [y, x, ry < rx];
    const score: Vote['score'] = bothBad || rx === ry ? 0.5 : aWon ? 1 : 0;
    return { a, b, score, ...(bothBad ? { bothBad } : {}), annotator, item };
  }
  return undefined;
}

// ---- the schedule ----------------------------------------------------------------------------

/** A 32-bit hash of (seed, item): each item's order seed, recorded with its vote. */
export function itemOrderSeed(sessionSeed: number, item: number): number {
  let h = (Math.imul(sessionSeed >>> 0, 0x9e3779b1) ^ Math.imul(item + 1, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** Whether the first model of the pair goes on the left, from the item's seed alone (reproducible from the record). */
export const firstOnLeft = (seed: number): boolean => mulberry32(seed)() < 0.5;

/**
 * Which two models meet at each item: the C(M,2) pairs in turn, so over n items every pair meets
 * n / C(M,2) times (±1) and every model as often as every other; each item's side order from its seed.
 */
export function schedule(models: string[], items: number, sessionSeed: number): { item: number; left: string; right: string; seed: number }[] {
  if (models.length < 2) throw new Error('a comparison needs at least two models');
  if (new Set(models).size !== models.length) throw new Error('the same model was chosen twice');
  const pairs: [string, string][] = [];
  for (let i = 0; i < models.length; i++) for (let j = i + 1; j < models.length; j++) pairs.push([models[i], models[j]]);
  return Array.from({ length: items }, (_, item) => {
    const [x, y] = pairs[item % pairs.length];
    const seed = itemOrderSeed(sessionSeed, item);
    const [left, right] = firstOnLeft(seed) ? [x, y] : [y, x];
    return { item, left, right, seed };
  });
}
