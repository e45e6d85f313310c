/**
 * The dataset reader: streams a JSON Lines file of any size, line by line, and turns each record
 * into its stage's in-memory type (SFT -> SftExample, RM -> Ranking, PPO -> PpoPrompt,
 * pretraining -> {text}). Every bad line becomes a `FILE:LINE: message` problem and reading goes
 * on: invalid UTF-8, bad JSON, a truncated last line, a value that is not an object, a record of
 * the wrong shape, an over-long line, a duplicate id. The stage comes from the file name
 * (*.sft.jsonl, *.rm.jsonl, *.ppo.jsonl) or is sniffed from the first valid record.
 */
import * as path from 'path';
import { forEachLine } from './lines';
import { Problem } from './jsonl';
import { SftExample, toSftExample } from './sft';
import { Ranking, toRanking } from './rm';
import { PpoPrompt, toPpoPrompt } from './ppo';

export type Stage = 'pretrain' | 'sft' | 'rm' | 'ppo';
export const STAGES: Stage[] = ['pretrain', 'sft', 'rm', 'ppo'];

export interface TextRecord {
  line: number;
  text: string;
}

export type StageRecord = SftExample | Ranking | PpoPrompt | TextRecord;

export function stageFromName(file: string): Stage | undefined {
  const m = /\.(sft|rm|ppo)\.jsonl$/i.exec(path.basename(file));
  if (m) return m[1].toLowerCase() as Stage;
  if (/\.txt$/i.test(file)) return 'pretrain';
  return undefined;
}

/** The stage a record's fields point to (for plain *.jsonl files). */
export function sniffStage(v: Record<string, unknown>): Stage | undefined {
  if ('responses' in v || 'ranks' in v || 'chosen' in v || 'rejected' in v) return 'rm';
  if ('response' in v || 'completion' in v) return 'sft';
  if (Array.isArray(v.messages)) {
    const last = v.messages[v.messages.length - 1] as { role?: unknown } | undefined;
    return last?.role === 'user' ? 'ppo' : 'sft';
  }
  if ('prompt' in v) return 'ppo';
  if ('text' in v) return 'pretrain';
  return undefined;
}

export function toRecord(stage: Stage, v: Record<string, unknown>, file: string, line: number): StageRecord | Problem {
  switch (stage) {
    case 'sft':
      return toSftExample(v, file, line);
    case 'rm':
      return toRanking(v, file, line);
    case 'ppo':
      return toPpoPrompt(v, file, line);
    case 'pretrain':
      return typeof v.text === 'string' && v.text.length > 0 ? { line, text: v.text } : { file, line, message: '"text" must be a non-empty string' };
  }
}

export interface ReadOptions {
  stage?: Stage;
  maxLineBytes?: number;
  onRecord?: (r: StageRecord, raw: Record<string, unknown>) => void;
  onProblem?: (p: Problem) => void;
}

export interface ReadSummary {
  file: string;
  stage: Stage | undefined;
  records: number;
  problems: number;
  lines: number;
  bytes: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function readDataset(file: string, o: ReadOptions = {}): ReadSummary {
  let stage = o.stage ?? stageFromName(file);
  let records = 0, problems = 0;
  const ids = new Map<string, number>();
  const problem = (line: number, message: string) => {
    problems++;
    o.onProblem?.({ file, line, message });
  };
  // bad JSON waits one line: only at the end do we know whether it was a truncated last line
  let pending: { line: number; message: string } | undefined;
  const flush = (truncated = false) => {
    if (pending) problem(pending.line, truncated ? `${pending.message}; the file ends without a newline, so the last line looks truncated` : pending.message);
    pending = undefined;
  };
  const stats = forEachLine(
    file,
    {
      line(bytes, lineNo) {
        flush();
        let b = bytes;
        if (lineNo === 1 && b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) b = b.subarray(3);
        let text: string;
        try {
          text = utf8.decode(b);
        } catch {
          return problem(lineNo, 'invalid UTF-8');
        }
        if (!text.trim()) return;
        let v: unknown;
        try {
          v = JSON.parse(text);
        } catch (e) {
          pending = { line: lineNo, message: `invalid JSON (${(e as Error).message})` };
          return;
        }
        if (v === null || typeof v !== 'object' || Array.isArray(v)) return problem(lineNo, `a record must be a JSON object, not ${Array.isArray(v) ? 'an array' : v === null ? 'null' : `a ${typeof v}`}`);
        const obj = v as Record<string, unknown>;
        if (!stage) {
          stage = sniffStage(obj);
          if (!stage) return problem(lineNo, 'cannot tell the stage of this record (no prompt, response, responses, chosen or text field)');
        }
        const rec = toRecord(stage, obj, file, lineNo);
        if ('message' in rec && 'file' in rec) return problem(lineNo, rec.message);
        if (obj.id !== undefined) {
          const id = String(obj.id);
          const first = ids.get(id);
          if (first !== undefined) return problem(lineNo, `duplicate id ${JSON.stringify(id)} (first on line ${first})`);
          ids.set(id, lineNo);
        }
        records++;
        o.onRecord?.(rec, obj);
      },
      tooLong(lineNo, _offset, length) {
        flush();
        problem(lineNo, `line of ${length} bytes is over the size limit of ${o.maxLineBytes ?? 64 << 20} bytes`);
      },
    },
    { maxLineBytes: o.maxLineBytes },
  );
  flush(pending?.line === stats.lines && stats.unterminated);
  return { file, stage, records, problems, lines: stats.lines, bytes: stats.bytes };
}
