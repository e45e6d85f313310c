/**
 * Statistics of a dataset file, in one streaming pass: record and problem counts, prompt and
 * response lengths in tokens (a distribution summary), for rankings the K distribution and the
 * tie rate (tied pairs / all pairs), the category mix (as InstructGPT reported its prompts),
 * annotators, and prompts that leak between a train file and its eval file.
 */
import { Problem } from './jsonl';
import { Stage, StageRecord, readDataset } from './reader';

export interface Distribution {
  count: number;
  mean: number;
  min: number;
  p50: number;
  p90: number;
  max: number;
}

export interface DatasetStats {
  file: string;
  stage: Stage | undefined;
  records: number;
  problems: number;
  bytes: number;
  prompt_tokens?: Distribution;
  response_tokens?: Distribution;
  k?: Record<string, number>;
  tie_rate?: number;
  categories?: Record<string, number>;
  annotators?: Record<string, number>;
  leaks?: { count: number; examples: string[] };
  first_problems: Problem[];
}

export function distribution(xs: number[]): Distribution | undefined {
  if (!xs.length) return undefined;
  const s = Float64Array.from(xs).sort();
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { count: s.length, mean: xs.reduce((a, b) => a + b, 0) / xs.length, min: s[0], p50: q(0.5), p90: q(0.9), max: s[s.length - 1] };
}

function promptOf(r: StageRecord): string | undefined {
  if ('prompt' in r) return r.prompt;
  if ('segments' in r) return r.segments.filter((s) => !s.train).map((s) => s.text).join('');
  return undefined;
}

function responsesOf(r: StageRecord): string[] {
  if ('responses' in r) return r.responses;
  if ('segments' in r) return [r.segments.filter((s) => s.train).map((s) => s.text).join('')];
  if ('text' in r) return [r.text];
  return [];
}

const norm = (s: string) => s.trim().replace(/\s+/g, ' ').toLowerCase();

/** Prompts of a file (normalised), for leak checks. */
export function promptSet(file: string): Set<string> {
  const set = new Set<string>();
  readDataset(file, { onRecord: (r) => { const p = promptOf(r); if (p) set.add(norm(p)); } });
  return set;
}

export function datasetStats(file: string, o: { countTokens?: (s: string) => number; evalFile?: string; keepProblems?: number } = {}): DatasetStats {
  const count = o.countTokens ?? ((s: string) => [...s].length);
  const prompts: number[] = [], responses: number[] = [];
  const k: Record<string, number> = {}, categories: Record<string, number> = {}, annotators: Record<string, number> = {};
  let pairs = 0, ties = 0;
  const first: Problem[] = [];
  const evalPrompts = o.evalFile ? promptSet(o.evalFile) : undefined;
  const leaks: string[] = [];
  const sum = readDataset(file, {
    onRecord: (r, raw) => {
      const p = promptOf(r);
      if (p !== undefined) prompts.push(count(p));
      for (const x of responsesOf(r)) responses.push(count(x));
      if ('ranks' in r) {
        k[r.ranks.length] = (k[r.ranks.length] ?? 0) + 1;
        for (let i = 0; i < r.ranks.length; i++) for (let j = i + 1; j < r.ranks.length; j++) {
          pairs++;
          if (r.ranks[i] === r.ranks[j]) ties++;
        }
      }
      const cat = typeof raw.category === 'string' ? raw.category : 'unlabelled';
      categories[cat] = (categories[cat] ?? 0) + 1;
      if (typeof raw.annotator === 'string') annotators[raw.annotator] = (annotators[raw.annotator] ?? 0) + 1;
      if (evalPrompts && p && evalPrompts.has(norm(p))) leaks.push(p);
    },
    onProblem: (pr) => {
      if (first.length < (o.keepProblems ?? 20)) first.push(pr);
    },
  });
  const stats: DatasetStats = { file, stage: sum.stage, records: sum.records, problems: sum.problems, bytes: sum.bytes, first_problems: first };
  stats.prompt_tokens = distribution(prompts);
  stats.response_tokens = distribution(responses);
  if (sum.stage === 'rm') {
    stats.k = k;
    stats.tie_rate = pairs ? ties / pairs : 0;
  }
  stats.categories = Object.fromEntries(Object.entries(categories).sort((a, b) => b[1] - a[1]).map(([c, n]) => [c, n / Math.max(1, sum.records)]));
  if (Object.keys(annotators).length) stats.annotators = annotators;
  if (evalPrompts) stats.leaks = { count: leaks.length, examples: leaks.slice(0, 5) };
  return stats;
}
