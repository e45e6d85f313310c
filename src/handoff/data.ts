/**
 * Our datasets as the distributed trainers read them (rlhf export). Two shapes each:
 *   chat models (the model has a chat template): conversations, which TRL and OpenRLHF render with
 *     the model's own template; plain models: the text exactly as our stages show it to the model
 *     ("Human: ... \n\nAssistant: ").
 *   SFT          {"prompt", "completion"} for TRL (its loss then is on the completion only, as ours),
 *                {"input", "output"} for OpenRLHF
 *   preferences  {"prompt", "chosen", "rejected", "margin"?} for both: every ordered pair of a K-way
 *                ranking (ties give no pair), with margin = the difference of the two ranks; a
 *                pairwise record keeps its own margin
 *   prompts      {"prompt"} for both
 * Pure: reads the dataset with the data layer's reader, returns rows.
 */
import { readDataset, StageRecord } from './../data/reader';
import { Message, SftExample } from '../data/sft';
import { Ranking, comparisons } from '../data/rm';
import { PpoPrompt } from '../data/ppo';

export type Row = Record<string, unknown>;

function records<T extends StageRecord>(file: string, stage: 'sft' | 'rm' | 'ppo'): T[] {
  const out: T[] = [];
  const problems: string[] = [];
  readDataset(file, { stage, onRecord: (r) => out.push(r as T), onProblem: (p) => problems.push(`${p.file}:${p.line}: ${p.message}`) });
  if (problems.length) throw new Error(`${problems.length} bad record(s) in ${file}; the first: ${problems[0]} (rlhf validate lists them all)`);
  return out;
}

/** A conversation's turns before its last assistant turn, and that turn. */
function lastTurn(messages: Message[]): { context: Message[]; response: Message } | undefined {
  const i = messages.map((m) => m.role).lastIndexOf('assistant');
  return i < 0 ? undefined : { context: messages.slice(0, i), response: messages[i] };
}

export interface SftRows {
  trl: Row[];
  openrlhf: Row[];
  /** Records whose earlier assistant turns are context only in the export (the trainers learn the last turn). */
  multiTurn: number;
}

export function sftRows(file: string, chat: boolean): SftRows {
  const out: SftRows = { trl: [], openrlhf: [], multiTurn: 0 };
  for (const ex of records<SftExample>(file, 'sft')) {
    if (ex.messages && ex.messages.filter((m) => m.role === 'assistant').length > 1) out.multiTurn++;
    if (chat && ex.messages) {
      const t = lastTurn(ex.messages)!;
      out.trl.push({ prompt: t.context, completion: [t.response] });
      out.openrlhf.push({ input: t.context, output: [t.response] });
      continue;
    }
    // plain text: everything before the last trained segment is the prompt
    const last = ex.segments.map((s) => s.train).lastIndexOf(true);
    const prompt = ex.segments.slice(0, last).map((s) => s.text).join('');
    const completion = ex.segments[last].text;
    out.trl.push({ prompt, completion });
    out.openrlhf.push({ input: prompt, output: completion });
  }
  return out;
}

export function preferenceRows(file: string, chat: boolean): { rows: Row[]; rankings: number } {
  const rows: Row[] = [];
  const all = records<Ranking>(file, 'rm');
  for (const r of all) {
    for (const [better, worse] of comparisons(r)) {
      const margin = r.responses.length > 2 ? r.ranks[worse] - r.ranks[better] : r.margin;
      const prompt = chat && r.messages ? r.messages : r.context;
      const side = (text: string) => (chat && r.messages ? [{ role: 'assistant', content: text }] : text);
      rows.push({ prompt, chosen: side(r.responses[better]), rejected: side(r.responses[worse]), ...(margin !== undefined ? { margin } : {}) });
    }
  }
  return { rows, rankings: all.length };
}

export function promptRows(file: string, chat: boolean): Row[] {
  return records<PpoPrompt>(file, 'ppo').map((p) => ({ prompt: chat && p.messages ? p.messages : p.context }));
}
