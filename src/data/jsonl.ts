/**
 * A small JSON Lines reader for training: every record with its 1-based line number; a bad line
 * becomes a `FILE:LINE: message` problem and never hides the good ones. BOM, CRLF and blank
 * lines are accepted, as the spec asks. The same line rules as the validator (src/data/reader.ts).
 */
import { isUtf8 } from 'buffer';
import { forEachLine } from './lines';

export interface Problem {
  file: string;
  line: number;
  message: string;
}

export function formatProblem(p: Problem): string {
  return `${p.file}:${p.line}: ${p.message}`;
}

export interface JsonlRecord {
  line: number;
  value: Record<string, unknown>;
}

/** A line of a JSONL file, checked as every reader checks it. */
export type LineResult = { value: Record<string, unknown> } | { message: string; badJson?: true } | undefined;

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
 * One line's bytes (no newline, CR removed) as a record, a problem, or undefined for a blank line.
 * The rules every reader shares: a BOM on any line is dropped (files are concatenated), UTF-8 is
 * checked natively, nesting is bounded before JSON.parse, a record is an object.
 */
export function parseJsonLine(b: Buffer): LineResult {
  if (b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) b = b.subarray(3);
  if (!isUtf8(b)) return { message: 'invalid UTF-8' };
  const deep = nestingProblem(b);
  if (deep) return { message: deep };
  const text = b.toString('utf8');
  if (text.charCodeAt(0) !== 123 && !text.trim()) return undefined; // most lines start with "{"
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return { message: `invalid JSON (${(e as Error).message})`, badJson: true };
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return { message: `a record must be a JSON object, not ${Array.isArray(v) ? 'an array' : v === null ? 'null' : `a ${typeof v}`}` };
  return { value: v as Record<string, unknown> };
}

/** Every record with its 1-based line number; bad lines as problems (the validator's rules). */
export function readJsonl(file: string): { records: JsonlRecord[]; problems: Problem[] } {
  const records: JsonlRecord[] = [];
  const problems: Problem[] = [];
  forEachLine(file, {
    line: (b, line) => {
      const r = parseJsonLine(b);
      if (!r) return;
      if ('value' in r) records.push({ line, value: r.value });
      else problems.push({ file, line, message: r.message });
    },
    tooLong: (line, _o, length) => problems.push({ file, line, message: `line of ${length} bytes is over the size limit` }),
  });
  return { records, problems };
}

/**
 * Every record of a JSONL file converted to one stage's type; bad lines (bad JSON or a record
 * the converter rejects) come back as `FILE:LINE: message` strings.
 */
export function readRecords<T extends object>(
  file: string,
  convert: (value: Record<string, unknown>, file: string, line: number) => T | Problem,
): { items: T[]; problems: string[] } {
  const { records, problems } = readJsonl(file);
  const out = problems.map(formatProblem);
  const items: T[] = [];
  for (const r of records) {
    const x = convert(r.value, file, r.line);
    if ('message' in x && 'file' in x) out.push(formatProblem(x as Problem));
    else items.push(x as T);
  }
  return { items, problems: out };
}
