/**
 * What the Datasets view shows, as pure functions (the VS Code provider only maps these nodes to
 * TreeItems): stages -> files (record and error counts, a statistics tooltip) -> records, a page
 * of 100 at a time with a "Show more" node; a record's label and its readable preview.
 */
import * as path from 'path';
import { codeBlock, escapeMarkdown } from './markdown';
import { DatasetStats } from './stats';
import { Stage, STAGES } from './reader';

export const PAGE = 100;

export const STAGE_LABELS: Record<Stage, string> = { pretrain: 'Pretraining', sft: 'SFT', rm: 'RM', ppo: 'PPO' };

export interface FileEntry {
  path: string;
  stage: Stage | undefined;
  records: number;
  problems: number;
  bytes: number;
  stats?: DatasetStats;
  /** False for a large file that was only indexed (its records not yet checked). */
  validated?: boolean;
}

export type TreeNode =
  | { kind: 'stage'; id: string; stage: Stage; label: string; description: string }
  | { kind: 'file'; id: string; path: string; stage: Stage; label: string; description: string; tooltip: string; hasErrors: boolean }
  | { kind: 'record'; id: string; path: string; index: number; line: number; label: string; description: string }
  | { kind: 'more'; id: string; path: string; shown: number; label: string };

const plural = (n: number, w: string) => `${n.toLocaleString('en')} ${w}${n === 1 ? '' : 's'}`;

/** The stages and their files; nothing at all for a folder without a dataset (the view's welcome text shows instead). */
export function stageNodes(files: FileEntry[]): TreeNode[] {
  if (!files.length) return [];
  return STAGES.map((stage) => {
    const fs = files.filter((f) => f.stage === stage);
    const records = fs.reduce((a, f) => a + f.records, 0);
    return { kind: 'stage' as const, id: `stage:${stage}`, stage, label: STAGE_LABELS[stage], description: fs.length ? `${plural(fs.length, 'file')}, ${plural(records, 'record')}` : 'no files' };
  });
}

export function fileNodes(files: FileEntry[], stage: Stage, root?: string): TreeNode[] {
  return files
    .filter((f) => f.stage === stage)
    .sort((a, b) => a.path.localeCompare(b.path))
    .map((f) => ({
      kind: 'file' as const,
      id: `file:${f.path}`,
      path: f.path,
      stage,
      label: path.basename(f.path),
      description: `${plural(f.records, 'record')}${f.problems ? ` · ${plural(f.problems, 'error')}` : ''}${f.validated === false ? ' · not validated yet (large file)' : ''}${root ? ` · ${path.relative(root, path.dirname(f.path)) || '.'}` : ''}`,
      tooltip: fileTooltip(f),
      hasErrors: f.problems > 0,
    }));
}

const fmt = (d?: { mean: number; p50: number; p90: number; max: number }) => (d ? `mean ${d.mean.toFixed(1)} · median ${d.p50} · p90 ${d.p90} · max ${d.max}` : '—');

/** Markdown for a file's tooltip. */
export function fileTooltip(f: FileEntry): string {
  const s = f.stats;
  const lines = [`**${escapeMarkdown(path.basename(f.path))}** — ${f.stage ? STAGE_LABELS[f.stage] : 'unknown stage'}`, '', `${plural(f.records, 'record')}, ${plural(f.problems, 'error')}, ${(f.bytes / 1e6).toFixed(2)} MB`];
  if (s) {
    lines.push('', `prompt tokens: ${fmt(s.prompt_tokens)}`, '', `response tokens: ${fmt(s.response_tokens)}`);
    if (s.k) lines.push('', `K: ${Object.entries(s.k).map(([k, n]) => `${k} × ${n}`).join(', ')} · ties ${(100 * (s.tie_rate ?? 0)).toFixed(1)}% of pairs`);
    if (s.categories) lines.push('', `categories: ${Object.entries(s.categories).slice(0, 6).map(([c, x]) => `${escapeMarkdown(c)} ${(100 * x).toFixed(1)}%`).join(', ')}`);
    if (s.annotators) lines.push('', `annotators: ${Object.entries(s.annotators).slice(0, 20).map(([a, n]) => `${escapeMarkdown(a)} (${n})`).join(', ')}`);
  }
  return lines.join('\n');
}

function shorten(s: string, n: number): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length > n ? one.slice(0, n - 1) + '…' : one;
}

/** A record's one-line label and description, from its raw JSON object. */
export function recordLabel(stage: Stage, raw: Record<string, unknown>): { label: string; description: string } {
  const msgs = Array.isArray(raw.messages) ? (raw.messages as { role: string; content: string }[]) : undefined;
  const prompt = typeof raw.prompt === 'string' ? raw.prompt : msgs ? msgs.filter((m) => m.role === 'user').at(-1)?.content ?? '' : typeof raw.text === 'string' ? raw.text : String(raw.chosen ?? '');
  let description = '';
  if (stage === 'rm' && Array.isArray(raw.responses)) description = `K = ${raw.responses.length}${Array.isArray(raw.ranks) ? ` · ranks ${(raw.ranks as number[]).join(' ')}` : ''}`;
  else if (stage === 'rm') description = 'pairwise';
  else if (stage === 'sft') description = shorten(String(raw.response ?? raw.completion ?? msgs?.filter((m) => m.role === 'assistant').at(-1)?.content ?? ''), 60);
  else if (typeof raw.category === 'string') description = raw.category;
  return { label: shorten(prompt || '(empty)', 80), description };
}

export function recordNodes(file: string, stage: Stage, count: number, shown: number, raw: (n: number) => { line: number; value: Record<string, unknown> | undefined }): TreeNode[] {
  const out: TreeNode[] = [];
  const end = Math.min(count, shown);
  for (let n = 0; n < end; n++) {
    const r = raw(n);
    const { label, description } = r.value ? recordLabel(stage, r.value) : { label: '(not valid JSON)', description: `line ${r.line}` };
    out.push({ kind: 'record', id: `record:${file}:${n}`, path: file, index: n, line: r.line, label: `${n + 1}. ${label}`, description });
  }
  if (count > end) out.push({ kind: 'more', id: `more:${file}:${end}`, path: file, shown: end, label: `Show more (${(count - end).toLocaleString('en')} left)` });
  return out;
}

const block = (s: string) => codeBlock(s);

/** A readable Markdown preview of one record: prompt, responses with ranks, metadata. */
export function recordPreview(file: string, line: number, raw: Record<string, unknown>): string {
  const out = [`# ${escapeMarkdown(path.basename(file))}, line ${line}`, ''];
  const known = new Set(['prompt', 'response', 'completion', 'responses', 'ranks', 'messages', 'chosen', 'rejected', 'text']);
  if (typeof raw.prompt === 'string') out.push('## Prompt', '', block(raw.prompt), '');
  if (Array.isArray(raw.messages)) for (const m of raw.messages as { role: unknown; content: unknown }[]) out.push(`## ${escapeMarkdown(String(m?.role))}`, '', block(String(m?.content)), '');
  if (typeof raw.response === 'string') out.push('## Response', '', block(raw.response), '');
  if (typeof raw.completion === 'string') out.push('## Completion', '', block(raw.completion), '');
  if (typeof raw.text === 'string') out.push('## Text', '', block(raw.text), '');
  if (Array.isArray(raw.responses)) {
    const ranks = Array.isArray(raw.ranks) ? (raw.ranks as number[]) : [];
    const order = (raw.responses as string[]).map((r, i) => ({ r, i, rank: ranks[i] ?? NaN })).sort((a, b) => a.rank - b.rank || a.i - b.i);
    out.push(`## Responses, best first (K = ${order.length})`, '');
    for (const o of order) out.push(`### Rank ${o.rank} — response ${o.i + 1}`, '', block(o.r), '');
  }
  if (typeof raw.chosen === 'string') out.push('## Chosen', '', block(raw.chosen), '', '## Rejected', '', block(String(raw.rejected ?? '')), '');
  const meta = Object.entries(raw).filter(([k]) => !known.has(k));
  if (meta.length) out.push('## Metadata', '', ...meta.map(([k, v]) => `- **${escapeMarkdown(k)}**: ${escapeMarkdown(typeof v === 'string' ? v : JSON.stringify(v) ?? String(v))}`), '');
  return out.join('\n');
}
