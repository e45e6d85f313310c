/**
 * The dataset reader: streams a JSON Lines file of any size, line by line, and turns each record
 * into its stage's in-memory type (SFT -> SftExample, RM -> Ranking, PPO -> PpoPrompt,
 * pretraining -> {text}). Every bad line becomes a `FILE:LINE: message` problem and reading goes
 * on: invalid UTF-8, bad JSON, a truncated last line, a value that is not an object, a record of
 * the wrong shape, an over-long line, a duplicate id. The stage comes from the file name
 * (*.sft.jsonl, *.rm.jsonl, *.ppo.jsonl) or is sniffed from the first valid record.
 */
import * as path from 'path';
import { isUtf8 } from 'buffer';
import { forEachLine } from './lines';
import { Problem, parseJsonLine } from './jsonl';
import { SftExample, toSftExample } from './sft';
import { Ranking, toRanking } from './rm';
import { PpoPrompt, toPpoPrompt } from './ppo';

import { STAGES, type Stage } from './stages';
export { STAGES, type Stage };

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

/**
 * The per-line checks shared by the file reader and the editor's diagnostics (which check a
 * document's unsaved text): UTF-8, JSON, object, stage, shape, duplicate ids.
 */
export class RecordChecker {
  stage: Stage | undefined;
  records = 0;
  problems = 0;
  private readonly ids = new Map<string, number>();
  // bad JSON waits one line: only at the end do we know whether it was a truncated last line
  private pending: { line: number; message: string } | undefined;

  /** A *.txt corpus: lines of text rather than JSON. */
  private readonly plainText: boolean;

  constructor(readonly file: string, private readonly o: ReadOptions = {}) {
    this.stage = o.stage ?? stageFromName(file);
    this.plainText = /\.txt$/i.test(file);
  }

  private problem(line: number, message: string): void {
    this.problems++;
    this.o.onProblem?.({ file: this.file, line, message });
  }

  private flush(truncated = false): void {
    const p = this.pending;
    this.pending = undefined;
    if (p) this.problem(p.line, truncated ? `${p.message}; the file ends without a newline, so the last line looks truncated` : p.message);
  }

  /** One line's bytes (no newline); validated as UTF-8 first. */
  bytes(b: Buffer, lineNo: number): void {
    this.flush();
    if (this.stage === 'pretrain' && this.plainText) {
      // a .txt corpus: text, not JSON; only its encoding can be wrong
      if (!isUtf8(b)) return this.problem(lineNo, 'invalid UTF-8');
      if (b.length) this.records++;
      return;
    }
    const r = parseJsonLine(b);
    if (!r) return;
    if ('message' in r) {
      // bad JSON waits one line: only at the end do we know whether it was a truncated last line
      if (r.badJson) this.pending = { line: lineNo, message: r.message };
      else this.problem(lineNo, r.message);
      return;
    }
    this.record(r.value, lineNo);
  }

  /** One line's text (no newline, CR removed): the editor's unsaved buffer. */
  text(text: string, lineNo: number): void {
    this.bytes(Buffer.from(text, 'utf8'), lineNo);
  }

  private record(obj: Record<string, unknown>, lineNo: number): void {
    if (!this.stage) {
      this.stage = sniffStage(obj);
      if (!this.stage) return this.problem(lineNo, 'cannot tell the stage of this record (no prompt, response, responses, chosen or text field)');
    }
    const rec = toRecord(this.stage, obj, this.file, lineNo);
    if ('message' in rec && 'file' in rec) return this.problem(lineNo, rec.message);
    if (obj.id !== undefined) {
      if (typeof obj.id !== 'string' && typeof obj.id !== 'number') return this.problem(lineNo, '"id" must be a string or a number');
      const id = String(obj.id);
      const first = this.ids.get(id);
      if (first !== undefined) return this.problem(lineNo, `duplicate id ${JSON.stringify(id)} (first on line ${first})`);
      this.ids.set(id, lineNo);
    }
    this.records++;
    this.o.onRecord?.(rec, obj);
  }

  /** The ids seen (first occurrences) and their lines, for a caller that checks across parts. */
  idList(): [string[], number[]] {
    return [[...this.ids.keys()], [...this.ids.values()]];
  }

  tooLong(lineNo: number, length: number): void {
    this.flush();
    this.problem(lineNo, `line of ${length} bytes is over the size limit of ${this.o.maxLineBytes ?? 64 << 20} bytes`);
  }

  /** After the last line: `unterminated` when the text does not end with a newline. */
  finish(lastLine: number, unterminated: boolean): void {
    this.flush(this.pending?.line === lastLine && unterminated);
  }
}

export function readDataset(file: string, o: ReadOptions = {}): ReadSummary {
  const c = new RecordChecker(file, o);
  const stats = forEachLine(file, { line: (b, n) => c.bytes(b, n), tooLong: (n, _off, len) => c.tooLong(n, len) }, { maxLineBytes: o.maxLineBytes });
  c.finish(stats.lines, stats.unterminated);
  return { file, stage: c.stage, records: c.records, problems: c.problems, lines: stats.lines, bytes: stats.bytes };
}

/** The same checks over a document's text (the editor's unsaved buffer). */
export function checkText(file: string, text: string, o: ReadOptions = {}): ReadSummary {
  const c = new RecordChecker(file, o);
  const lines = text.split('\n');
  const unterminated = !text.endsWith('\n');
  if (!unterminated) lines.pop();
  lines.forEach((l, i) => c.text(l.endsWith('\r') ? l.slice(0, -1) : l, i + 1));
  c.finish(lines.length, unterminated && text.length > 0);
  return { file, stage: c.stage, records: c.records, problems: c.problems, lines: lines.length, bytes: Buffer.byteLength(text) };
}
