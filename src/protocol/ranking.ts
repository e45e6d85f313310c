/**
 * Messages between the extension host and the ranking panel's webview. One module for both
 * sides; each side validates what it receives. The webview only ever says *how* the responses
 * the host showed it are ranked: the host holds the prompt, the responses and the file they are
 * appended to, so no message from the webview can name a path or change what was generated.
 */
import { isInt, isNum, isObj, isStr, isStrArray } from './validate';

export const RANKING_FLAGS = ['not_rankable', 'unsafe'] as const;
export type RankingFlag = (typeof RANKING_FLAGS)[number];
export const MAX_COMMENT = 10_000;

/** What the panel shows about a session (display text only; no paths the host writes to). */
export interface SessionInfo {
  title: string;
  /** Where rankings go, as the workspace-relative name the annotator chose. */
  target: string;
  model: string;
  annotator: string;
  k: number;
  /** e.g. "temperature 0.8 · top-p 1 · top-k 0 · 128 tokens · seed 1" */
  generation: string;
  /** Markdown of the guidelines file, or undefined when none is set. */
  guidelines?: string;
  guidelinesName?: string;
  /** A blind comparison: two models' responses, names hidden, one vote per item. */
  evaluation?: boolean;
}

/** A blind comparison's results so far (names shown only when the annotator reveals them). */
export interface EvalResults {
  votes: number;
  /** What a tie or "both bad" counts for. */
  ties: 'half' | 'exclude';
  pairs: { a: string; b: string; wins_a: number; wins_b: number; ties: number; both_bad: number; n: number; win_rate: number | null; low: number; high: number }[];
  ratings?: { model: string; rating: number; low: number; high: number; votes: number }[];
  /** Judges (rlhf evaluate --judge) that voted on the same items: their own results, and how often they agree with the people. */
  judges?: { annotator: string; pairs: EvalResults['pairs']; agreement: number | null; items: number }[];
}

export interface Progress {
  ranked: number;
  skipped: number;
  total: number;
  /** Rankings in the target file that carry a preference (any annotator, any session). */
  records: number;
  /** Submissions of this session that U can still take back. */
  undoable: number;
  /** Rankings per hour of ranking time, this session. */
  perHour: number | null;
}

export interface AgreementSummary {
  items: number;
  annotators: number;
  pairwise: number | null;
  alpha: number | null;
  tau: { a: string; b: string; tau_b: number; items: number }[];
}

export type HostToRanking =
  | { type: 'session'; session: SessionInfo }
  /** A new item: the prompt, and the responses so far (streaming until `complete`). */
  | { type: 'item'; index: number; prompt: string; responses: string[]; complete: boolean }
  | { type: 'progress'; progress: Progress }
  | { type: 'agreement'; agreement: AgreementSummary }
  | { type: 'results'; results: EvalResults }
  | { type: 'submitted'; index: number; record: string }
  | { type: 'undone'; index: number }
  | { type: 'finished' }
  | { type: 'error'; message: string };

export type RankingToHost =
  | { type: 'ready' }
  /** ranks[i] is the rank of response i, 1 = best, equal = tie. */
  | { type: 'submit'; index: number; ranks: number[]; flags: RankingFlag[]; comment: string; timeMs: number }
  | { type: 'skip'; index: number }
  /** Undo the last submitted ranking of this session (the host removes exactly that line). */
  | { type: 'undo' }
  | { type: 'regenerate'; index: number }
  /** "Train DPO on these rankings": the host starts DPO on the target file. */
  | { type: 'trainDpo' };

/** The ranking panel offers DPO on its file from this many rankings on (a few batches' worth). */
export const DPO_MIN_RECORDS = 16;

/** Ranks 1..K with no gap (1, 2, 2, 3 for a tie in second place). */
export function validRanks(ranks: unknown, k?: number): ranks is number[] {
  if (!Array.isArray(ranks) || ranks.length < 2 || ranks.length > 9 || (k !== undefined && ranks.length !== k)) return false;
  if (!ranks.every((r) => isInt(r) && r >= 1 && r <= ranks.length)) return false;
  const used = [...new Set(ranks as number[])].sort((a, b) => a - b);
  return used.every((r, i) => r === i + 1);
}

export function parseRankingToHost(v: unknown): RankingToHost | undefined {
  if (!isObj(v)) return undefined;
  switch (v.type) {
    case 'ready':
    case 'undo':
    case 'trainDpo':
      return { type: v.type };
    case 'skip':
    case 'regenerate':
      return isInt(v.index) && v.index >= 0 ? { type: v.type, index: v.index } : undefined;
    case 'submit': {
      if (!isInt(v.index) || v.index < 0 || !validRanks(v.ranks)) return undefined;
      if (!isStrArray(v.flags) || !v.flags.every((f) => (RANKING_FLAGS as readonly string[]).includes(f)) || new Set(v.flags).size !== v.flags.length) return undefined;
      if (!isStr(v.comment) || v.comment.length > MAX_COMMENT) return undefined;
      if (!isInt(v.timeMs) || v.timeMs < 0) return undefined;
      return { type: 'submit', index: v.index, ranks: v.ranks, flags: v.flags as RankingFlag[], comment: v.comment, timeMs: v.timeMs };
    }
    default:
      return undefined;
  }
}

const isSession = (s: unknown): s is SessionInfo =>
  isObj(s) && isStr(s.title) && isStr(s.target) && isStr(s.model) && isStr(s.annotator) && isInt(s.k) && s.k >= 2 && s.k <= 9 && isStr(s.generation) &&
  (s.guidelines === undefined || isStr(s.guidelines)) && (s.guidelinesName === undefined || isStr(s.guidelinesName)) && (s.evaluation === undefined || typeof s.evaluation === 'boolean');
const isResults = (r: unknown): r is EvalResults =>
  isObj(r) && isInt(r.votes) && (r.ties === 'half' || r.ties === 'exclude') && isPairs(r.pairs) &&
  (r.ratings === undefined || (Array.isArray(r.ratings) && r.ratings.every((x) => isObj(x) && isStr(x.model) && isNum(x.rating) && isNum(x.low) && isNum(x.high) && isInt(x.votes)))) &&
  (r.judges === undefined || (Array.isArray(r.judges) && r.judges.every((j) => isObj(j) && isStr(j.annotator) && isPairs(j.pairs) && (j.agreement === null || isNum(j.agreement)) && isInt(j.items))));
const isPairs = (ps: unknown) =>
  Array.isArray(ps) && ps.every((p) => isObj(p) && isStr(p.a) && isStr(p.b) && [p.wins_a, p.wins_b, p.ties, p.both_bad, p.n].every(isInt) && (p.win_rate === null || isNum(p.win_rate)) && isNum(p.low) && isNum(p.high));
const numOrNull = (x: unknown) => x === null || isNum(x);

export function parseHostToRanking(v: unknown): HostToRanking | undefined {
  if (!isObj(v)) return undefined;
  switch (v.type) {
    case 'session':
      return isSession(v.session) ? { type: 'session', session: v.session } : undefined;
    case 'item':
      return isInt(v.index) && isStr(v.prompt) && isStrArray(v.responses) && typeof v.complete === 'boolean' ? { type: 'item', index: v.index, prompt: v.prompt, responses: v.responses, complete: v.complete } : undefined;
    case 'progress': {
      const p = v.progress;
      return isObj(p) && isInt(p.ranked) && isInt(p.skipped) && isInt(p.total) && isInt(p.records) && isInt(p.undoable) && numOrNull(p.perHour) ? { type: 'progress', progress: p as unknown as Progress } : undefined;
    }
    case 'agreement': {
      const a = v.agreement;
      const ok = isObj(a) && isInt(a.items) && isInt(a.annotators) && numOrNull(a.pairwise) && numOrNull(a.alpha) && Array.isArray(a.tau) &&
        a.tau.every((t) => isObj(t) && isStr(t.a) && isStr(t.b) && isNum(t.tau_b) && isInt(t.items));
      return ok ? { type: 'agreement', agreement: a as unknown as AgreementSummary } : undefined;
    }
    case 'results':
      return isResults(v.results) ? { type: 'results', results: v.results } : undefined;
    case 'submitted':
      return isInt(v.index) && isStr(v.record) ? { type: 'submitted', index: v.index, record: v.record } : undefined;
    case 'undone':
      return isInt(v.index) ? { type: 'undone', index: v.index } : undefined;
    case 'finished':
      return { type: 'finished' };
    case 'error':
      return isStr(v.message) ? { type: 'error', message: v.message } : undefined;
    default:
      return undefined;
  }
}
