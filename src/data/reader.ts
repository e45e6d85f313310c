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
import { Problem } from './jsonl';
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

/** JSON nested deeper than this, or with more arrays and objects than this in one line, is refused before it is parsed. */
export const MAX_DEPTH = 100;
export const MAX_CONTAINERS = 100_000;

/**
 * Why a line's JSON is too deep or has too many containers to parse safely, or undefined. Parsing
 * `[[[[…` of 19 MB took 1.5 GB; a 100k-deep value overflows the stack wherever it is walked. The
 * count of "[" and "{" bounds both, found by native search; only lines with over MAX_DEPTH of them
 * (rare: code in a response, say) are scanned byte by byte, strings skipped.
 */
export function nestingProblem(b: Buffer): string | undefined {
  let brackets = 0;
  for (const ch of [91, 123]) {
    for (let i = b.indexOf(ch); i >= 0 && brackets <= MAX_DEPTH; i = b.indexOf(ch, i + 1)) brackets++;
  }
  if (brackets <= MAX_DEPTH) return undefined;
  let depth = 0, containers = 0, inString = false;
  for (let i = 0; i < b.length; i++) {
    const c = b[i];
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped byte
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 || c === 123) {
      if (++depth > MAX_DEPTH) return `nested deeper than ${MAX_DEPTH} levels; refused before parsing`;
      if (++containers > MAX_CONTAINERS) return `more than ${MAX_CONTAINERS} arrays and objects in one line; refused before parsing`;
    } else if (c === 93 || c === 125) depth--;
  }
  return undefined;
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

  constructor(readonly file: string, private readonly o: ReadOptions = {}) {
    this.stage = o.stage ?? stageFromName(file);
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
    if (b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) b = b.subarray(3); // a BOM (any line: files concatenated)
    if (!isUtf8(b)) {
      this.flush();
      return this.problem(lineNo, 'invalid UTF-8');
    }
    const deep = nestingProblem(b);
    if (deep) {
      this.flush();
      return this.problem(lineNo, deep);
    }
    this.parse(b.toString('utf8'), lineNo);
  }

  /** One line's text (no newline, CR removed): the editor's unsaved buffer. */
  text(text: string, lineNo: number): void {
    this.bytes(Buffer.from(text, 'utf8'), lineNo);
  }

  private parse(text: string, lineNo: number): void {
    this.flush();
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    if (text.charCodeAt(0) !== 123 && !text.trim()) return; // most lines start with "{"
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      this.pending = { line: lineNo, message: `invalid JSON (${(e as Error).message})` };
      return;
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return this.problem(lineNo, `a record must be a JSON object, not ${Array.isArray(v) ? 'an array' : v === null ? 'null' : `a ${typeof v}`}`);
    const obj = v as Record<string, unknown>;
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
