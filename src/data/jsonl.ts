/**
 * A small JSON Lines reader for training: every record with its 1-based line number; a bad line
 * becomes a `FILE:LINE: message` problem and never hides the good ones. BOM, CRLF and blank
 * lines are accepted, as the spec asks.
 */
import * as fs from 'fs';

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

export function readJsonl(file: string): { records: JsonlRecord[]; problems: Problem[] } {
  let text = fs.readFileSync(file, 'utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const records: JsonlRecord[] = [];
  const problems: Problem[] = [];
  text.split('\n').forEach((raw, i) => {
    const lineText = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (!lineText.trim()) return;
    let v: unknown;
    try {
      v = JSON.parse(lineText);
    } catch (e) {
      problems.push({ file, line: i + 1, message: `invalid JSON (${(e as Error).message})` });
      return;
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) {
      problems.push({ file, line: i + 1, message: 'a record must be a JSON object' });
      return;
    }
    records.push({ line: i + 1, value: v as Record<string, unknown> });
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
