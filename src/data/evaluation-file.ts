/**
 * A blind evaluation on disk. Its items (made once by `rlhf compare`: each prompt, the two models
 * that answer it, their responses, the side each is shown on and the seed of that order) are a
 * JSONL file of their own under .rlhf/evals/; the votes are appended to an RM file (a dataset like
 * any other, see evaluation.ts for the records), each naming its evaluation, so one votes file can
 * hold several evaluations and any other rankings.
 */
import * as fs from 'fs';
import * as path from 'path';
import { readDataset } from './reader';
import { Vote, voteOf } from './evaluation';
import { parseJsonLine } from './jsonl';
import { readRegularFile, writeFileAtomic } from './durable';

export interface EvalItem {
  item: number;
  prompt: string;
  /** What the models read (the chat template around the prompt). */
  context: string;
  seed: number;
  left: { model: string; response: string };
  right: { model: string; response: string };
}

export interface EvalHeader {
  evaluation: string;
  models: string[];
  prompts: string;
  seed: number;
  generation: Record<string, number>;
  created_at: string;
}

/** items.jsonl: a header line ({"evaluation", "models", ...}), then one item per line. */
export function writeItems(file: string, header: EvalHeader, items: EvalItem[]): void {
  writeFileAtomic(file, [header, ...items].map((x) => JSON.stringify(x)).join('\n') + '\n');
}

export function readItems(file: string): { header: EvalHeader; items: EvalItem[] } {
  const lines = readRegularFile(file, 256 << 20).toString('utf8').split('\n').filter((l) => l.trim());
  const parsed = lines.map((l, i) => {
    const v = parseJsonLine(Buffer.from(l.replace(/\r$/, '')));
    if (!v || !('value' in v)) throw new Error(`${file}:${i + 1}: ${v && 'message' in v ? v.message : 'not a JSON object'}`);
    return v.value;
  });
  const [header, ...rest] = parsed;
  if (!header || typeof header.evaluation !== 'string' || !Array.isArray(header.models)) throw new Error(`${file}: not an evaluation's items file (its first line names the evaluation and its models)`);
  const items = rest.map((x, i) => {
    const side = (s: unknown) => typeof s === 'object' && s !== null && typeof (s as { model?: unknown }).model === 'string' && typeof (s as { response?: unknown }).response === 'string';
    if (!Number.isSafeInteger(x.item) || typeof x.prompt !== 'string' || typeof x.context !== 'string' || !Number.isSafeInteger(x.seed) || !side(x.left) || !side(x.right)) throw new Error(`${file}:${i + 2}: not an evaluation item`);
    return x as unknown as EvalItem;
  });
  return { header: header as unknown as EvalHeader, items };
}

/** The votes of one evaluation (or of every evaluation) in a votes file, and the items this annotator has voted on. */
export function readVotes(file: string, o: { evaluation?: string; annotator?: string } = {}): { votes: Vote[]; voted: Set<number> } {
  const votes: Vote[] = [], voted = new Set<number>();
  if (!fs.existsSync(file)) return { votes, voted };
  readDataset(file, {
    stage: 'rm',
    onRecord: (_r, raw) => {
      if (o.evaluation !== undefined && raw.evaluation !== o.evaluation) return;
      const v = voteOf(raw);
      if (!v) return;
      if (typeof raw.evaluation === 'string') v.evaluation = raw.evaluation;
      votes.push(v);
      if (o.annotator !== undefined && v.annotator === o.annotator && v.item !== undefined) voted.add(v.item);
    },
  });
  return { votes, voted };
}

/** Where an evaluation named `name` keeps its items. */
export const itemsFile = (workspace: string, name: string) => path.join(workspace, '.rlhf', 'evals', name, 'items.jsonl');
