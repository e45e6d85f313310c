/**
 * Messages between the extension host and the training dashboard's webview. One module for both
 * sides; each side validates what it receives. The host tails each run's metrics.jsonl (the file
 * is the source of truth) and sends new points; the webview asks for exports by metric name only:
 * the host decides the file (under the workspace's .rlhf/exports/).
 */
import { isNum, isObj, isStr } from './validate';
import { SampleRow, toSampleRow } from '../data/samples';

export interface RunMeta {
  id: string;
  stage: string;
  status: string;
  /** run.json's started_at, ms since the epoch (x axis "relative time" counts from it). */
  startedAt: number;
  /** A sweep's run: its values ("beta=0.1 seed=2"). */
  sweep?: string;
}

/** Which runs a dashboard shows: by id (folder name under the runs folder), or all of a stage. */
export type DashboardScope = { ids: string[] } | { stage: string };

const isRunId = (v: unknown): v is string => isStr(v) && /^[\w.-]+$/.test(v) && v !== '.' && v !== '..';

export function isScope(v: unknown): v is DashboardScope {
  if (!isObj(v)) return false;
  if ('stage' in v) return isStr(v.stage) && /^\w+$/.test(v.stage);
  return Array.isArray(v.ids) && v.ids.length > 0 && v.ids.every(isRunId);
}

export type HostToDashboard =
  /** The runs shown, and the scope (kept in the webview's state so a reload brings the same dashboard back). */
  | { type: 'runs'; scope: DashboardScope; runs: RunMeta[] }
  /**
   * New points of one run, as columns. `reset` replaces what the webview holds (the file was
   * rewritten, e.g. a resumed run truncated it). A metric missing at a step is null.
   */
  | { type: 'points'; run: string; reset: boolean; step: number[]; time: number[]; metrics: Record<string, (number | null)[]> }
  /** New lines of one run's samples.jsonl (at most MAX_SAMPLE_ROWS a message); `reset` as for points. */
  | { type: 'samples'; run: string; reset: boolean; rows: SampleRow[] }
  | { type: 'status'; run: string; status: string }
  | { type: 'error'; message: string };

export const MAX_SAMPLE_ROWS = 2000;

export type DashboardToHost =
  | { type: 'ready' }
  | { type: 'exportCsv'; metric: string }
  /** A PNG of one card, base64 without the data: prefix. */
  | { type: 'exportPng'; metric: string; png: string };

/** Metric names as trainers write them: words of letters, digits, _ . - joined by / (objective/kl); no "." or ".." word. */
export const isMetricName = (v: unknown): v is string =>
  isStr(v) && v.length <= 100 && v.split('/').every((w) => /^[\w.-]+$/.test(w) && w !== '.' && w !== '..');
export const MAX_PNG_BASE64 = 30 << 20;

export function parseDashboardToHost(v: unknown): DashboardToHost | undefined {
  if (!isObj(v)) return undefined;
  switch (v.type) {
    case 'ready':
      return { type: 'ready' };
    case 'exportCsv':
      return isMetricName(v.metric) ? { type: 'exportCsv', metric: v.metric } : undefined;
    case 'exportPng':
      // base64 of a PNG starts with the encoded signature \x89PNG
      return isMetricName(v.metric) && isStr(v.png) && v.png.length <= MAX_PNG_BASE64 && v.png.startsWith('iVBORw0KGgo') && /^[A-Za-z0-9+/=]+$/.test(v.png)
        ? { type: 'exportPng', metric: v.metric, png: v.png }
        : undefined;
    default:
      return undefined;
  }
}

const isRunMeta = (r: unknown): r is RunMeta => isObj(r) && isStr(r.id) && isStr(r.stage) && isStr(r.status) && isNum(r.startedAt) && (r.sweep === undefined || isStr(r.sweep));
const isColumn = (c: unknown, n: number): c is (number | null)[] => Array.isArray(c) && c.length === n && c.every((x) => x === null || isNum(x));

export function parseHostToDashboard(v: unknown): HostToDashboard | undefined {
  if (!isObj(v)) return undefined;
  switch (v.type) {
    case 'runs':
      return isScope(v.scope) && Array.isArray(v.runs) && v.runs.every(isRunMeta) ? { type: 'runs', scope: v.scope, runs: v.runs } : undefined;
    case 'points': {
      if (!isStr(v.run) || typeof v.reset !== 'boolean' || !Array.isArray(v.step) || !v.step.every(isNum) || !isObj(v.metrics)) return undefined;
      const n = v.step.length;
      if (!isColumn(v.time, n) || v.time.some((t) => t === null)) return undefined;
      const metrics: Record<string, (number | null)[]> = {};
      for (const [k, c] of Object.entries(v.metrics)) {
        if (!isMetricName(k) || !isColumn(c, n)) return undefined;
        metrics[k] = c;
      }
      return { type: 'points', run: v.run, reset: v.reset, step: v.step, time: v.time as number[], metrics };
    }
    case 'samples': {
      if (!isStr(v.run) || typeof v.reset !== 'boolean' || !Array.isArray(v.rows) || v.rows.length > MAX_SAMPLE_ROWS) return undefined;
      const rows = v.rows.map(toSampleRow);
      return rows.every((r): r is SampleRow => r !== undefined) ? { type: 'samples', run: v.run, reset: v.reset, rows } : undefined;
    }
    case 'status':
      return isStr(v.run) && isStr(v.status) ? { type: 'status', run: v.run, status: v.status } : undefined;
    case 'error':
      return isStr(v.message) ? { type: 'error', message: v.message } : undefined;
    default:
      return undefined;
  }
}

/** Which metrics a stage's dashboard shows first, in order (others follow, by name). */
export const STAGE_METRICS: Record<string, string[]> = {
  pretrain: ['loss', 'eval/loss', 'learning_rate', 'grad_norm', 'tokens_per_second'],
  sft: ['loss', 'eval/loss', 'learning_rate', 'grad_norm', 'tokens_per_second'],
  rm: ['loss', 'accuracy', 'margin', 'eval/loss', 'eval/accuracy', 'learning_rate', 'grad_norm', 'tokens_per_second'],
  ppo: [
    'objective/scores', 'objective/rlhf_reward', 'objective/kl', 'objective/kl_coef', 'objective/entropy', 'objective/non_score_reward',
    'policy/clipfrac_avg', 'val/clipfrac_avg', 'loss/value_avg', 'loss/policy_avg', 'policy/approxkl_avg', 'val/ratio', 'tokens_per_second',
  ],
  dpo: [
    'loss', 'rewards/accuracies', 'rewards/margins', 'rewards/chosen', 'rewards/rejected', 'logps/chosen', 'logps/rejected',
    'eval/loss', 'eval/rewards/accuracies', 'eval/rewards/margins', 'learning_rate', 'grad_norm', 'tokens_per_second',
  ],
  grpo: [
    'reward', 'reward_std', 'kl', 'frac_reward_zero_std', 'clip_ratio/region_mean', 'entropy', 'completions/mean_length',
    'completions/clipped_ratio', 'loss', 'grad_norm', 'tokens_per_second',
  ],
  rloo: ['reward', 'objective/rlhf_reward', 'kl', 'clip_ratio', 'completions/mean_length', 'completions/clipped_ratio', 'loss', 'grad_norm', 'tokens_per_second'],
};

/** Orders a stage's metrics: the stage's list first, then the rest alphabetically. */
export function orderMetrics(stage: string, names: Iterable<string>): string[] {
  const known = STAGE_METRICS[stage] ?? [];
  const all = [...new Set(names)];
  const rank = (m: string) => (known.includes(m) ? known.indexOf(m) : known.length);
  return all.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

