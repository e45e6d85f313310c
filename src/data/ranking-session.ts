/**
 * A ranking session without the UI: the prompts to rank (from a PPO or RM file, or one typed
 * prompt), which of them this annotator already ranked (read from the RM file itself, so a
 * session resumes from what is on disk), the K-way record a submission appends, and the pace.
 */
import * as fs from 'fs';
import { randomUUID } from 'crypto';
import { readDataset } from './reader';
import type { RankingByAnnotator } from './agreement';
import { comparisons } from './rm';
import type { Message } from './sft';

export interface PromptItem {
  /** The prompt as the annotator reads it and as the record stores it. */
  prompt: string;
  /** What the model reads (the chat template around the prompt, or a rendered conversation). */
  context: string;
  /** The conversation, which a model with a chat template reads instead of context. */
  messages?: Message[];
  /** What marks the item done in RankingFile.ranked, when not the prompt (an evaluation's items repeat prompts). */
  key?: string;
}

/** The distinct prompts of a PPO or RM file, in file order (an RM file repeats its prompts). */
export function loadPrompts(file: string): PromptItem[] {
  return loadPromptsCounted(file).items;
}

/** The distinct prompts, and how many records the file has (the panel says so when repeats were merged). */
export function loadPromptsCounted(file: string): { items: PromptItem[]; records: number } {
  const seen = new Set<string>();
  const items: PromptItem[] = [];
  let records = 0;
  readDataset(file, {
    onRecord: (r) => {
      records++;
      if (!('prompt' in r) || !('context' in r) || !r.prompt || seen.has(r.prompt)) return;
      seen.add(r.prompt);
      items.push({ prompt: r.prompt, context: r.context, messages: 'messages' in r ? (r.messages as Message[] | undefined) : undefined });
    },
  });
  return { items, records };
}

export interface RankingFile {
  /** Prompts the annotator has a record for (flagged ones count: they were seen). */
  ranked: Set<string>;
  /** K-way rankings that name an annotator and are not flagged not_rankable: what agreement is computed on. */
  rankings: RankingByAnnotator[];
  /** Records that state a preference (at least two different ranks, not flagged not_rankable): what DPO or a reward model learns from. */
  preferences: number;
}

/** One pass over an RM file: what this annotator has done, and the annotated rankings of everyone. */
export function readRankingFile(rmFile: string, annotator?: string): RankingFile {
  const out: RankingFile = { ranked: new Set(), rankings: [], preferences: 0 };
  if (!fs.existsSync(rmFile)) return out;
  readDataset(rmFile, {
    stage: 'rm',
    onRecord: (r, raw) => {
      if (annotator !== undefined && raw.annotator === annotator && typeof raw.prompt === 'string') out.ranked.add(raw.prompt);
      if ('ranks' in r && comparisons(r).length > 0) out.preferences++;
      if ('ranks' in r && r.annotator && !r.flags.includes('not_rankable')) out.rankings.push({ prompt: r.prompt, responses: r.responses, ranks: r.ranks, annotator: r.annotator });
    },
  });
  return out;
}

/** The first prompt at or after `from` (wrapping around) that is neither ranked nor skipped; -1 when none is left. */
export function nextPrompt(items: PromptItem[], ranked: Set<string>, skipped: Set<number>, from = 0): number {
  for (let j = 0; j < items.length; j++) {
    const i = (from + j) % items.length;
    if (!ranked.has(items[i].key ?? items[i].prompt) && !skipped.has(i)) return i;
  }
  return -1;
}

export interface Submission {
  prompt: string;
  responses: string[];
  ranks: number[];
  annotator: string;
  timeMs: number;
  createdAt: Date;
  model: string;
  flags: string[];
  comment: string;
  /** Unique per record (undo finds its own line by it); made here when not given. */
  id?: string;
}

/** The K-way record of the spec, fields in the spec's order. */
export function rankingRecord(s: Submission): Record<string, unknown> {
  if (s.ranks.length !== s.responses.length) throw new Error(`${s.responses.length} responses but ${s.ranks.length} ranks`);
  return {
    prompt: s.prompt,
    responses: s.responses,
    ranks: s.ranks,
    annotator: s.annotator,
    time_ms: Math.round(s.timeMs),
    created_at: s.createdAt.toISOString(),
    model: s.model,
    flags: s.flags,
    comment: s.comment,
    id: s.id ?? `rank-${randomUUID()}`,
  };
}

/** Rankings per hour of ranking time (the time the annotator spent on each submitted item). */
export function perHour(timesMs: number[]): number | null {
  const total = timesMs.reduce((a, b) => a + b, 0);
  return timesMs.length && total > 0 ? (timesMs.length * 3_600_000) / total : null;
}

/** Seed for an item's responses: the same prompt index and setting give the same responses again. */
export function itemSeed(seed: number, index: number): number {
  return seed + 9 * index;
}
