/**
 * Following a run's metrics.jsonl (or samples.jsonl) while the trainer appends to it: each read returns the
 * complete lines written since the last one (a half-written last line waits for its newline),
 * and says `reset` when the file was rewritten shorter (a resumed run truncates it to its
 * checkpoint), so the reader starts over. The file is the source of truth; nothing is kept here
 * but the byte offset.
 */
import * as fs from 'fs';
import { openRegular } from './durable';

export interface MetricRow {
  step: number;
  time: number;
  metrics: Record<string, number | null>;
}

export interface Columns {
  step: number[];
  time: number[];
  metrics: Record<string, (number | null)[]>;
}

/** At most this much is read per call; a larger backlog comes in the following reads. */
const MAX_READ = 32 << 20;

/** Follows any JSONL file that only grows (or is rewritten shorter): each line through `parse`. */
export class JsonlTail<T> {
  private offset = 0;
  private pending = Buffer.alloc(0);
  /** Lines that `parse` rejected (counted, skipped). */
  bad = 0;

  constructor(readonly file: string, private readonly parse: (line: string) => T | undefined) {}

  read(): { reset: boolean; rows: T[] } {
    let size: number;
    try {
      size = fs.statSync(this.file).size;
    } catch {
      return { reset: false, rows: [] }; // not written yet
    }
    let reset = false;
    if (size < this.offset) {
      this.offset = 0;
      this.pending = Buffer.alloc(0);
      this.bad = 0;
      reset = true;
    }
    if (size === this.offset) return { reset, rows: [] };
    const chunk = Buffer.alloc(Math.min(size - this.offset, MAX_READ));
    let fd: number;
    try {
      fd = openRegular(this.file, { noFollow: true }).fd;
    } catch {
      return { reset, rows: [] }; // not a regular file: nothing to follow
    }
    try {
      let got = 0;
      while (got < chunk.length) {
        const n = fs.readSync(fd, chunk, got, chunk.length - got, this.offset + got);
        if (n === 0) break;
        got += n;
      }
      this.offset += got;
      this.pending = Buffer.concat([this.pending, chunk.subarray(0, got)]);
    } finally {
      fs.closeSync(fd);
    }
    const rows: T[] = [];
    let start = 0;
    for (let nl = this.pending.indexOf(10); nl >= 0; nl = this.pending.indexOf(10, start)) {
      const row = this.parse(this.pending.toString('utf8', start, nl));
      if (row) rows.push(row);
      else if (nl > start) this.bad++;
      start = nl + 1;
    }
    this.pending = this.pending.subarray(start);
    if (this.pending.length > MAX_READ) {
      // a "line" this long is not a metrics row: skip it rather than hold it
      this.pending = Buffer.alloc(0);
      this.bad++;
    }
    return { reset, rows };
  }
}

export class MetricsTail extends JsonlTail<MetricRow> {
  constructor(file: string) {
    super(file, parseRow);
  }
}

/** One metrics.jsonl line: {"step", "time", ...name: number}; null (JSON's NaN) kept as null. */
export function parseRow(line: string): MetricRow | undefined {
  if (!line.trim()) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.step !== 'number') return undefined;
  const metrics: Record<string, number | null> = {};
  for (const [k, x] of Object.entries(o)) {
    if (k === 'step' || k === 'time') continue;
    if (typeof x === 'number' || x === null) metrics[k] = x;
  }
  return { step: o.step, time: typeof o.time === 'number' ? o.time : NaN, metrics };
}

/** Rows as columns; a metric absent from a row is null there. */
export function toColumns(rows: MetricRow[]): Columns {
  const names = new Set<string>();
  for (const r of rows) for (const k of Object.keys(r.metrics)) names.add(k);
  const metrics: Record<string, (number | null)[]> = {};
  for (const k of names) metrics[k] = rows.map((r) => (r.metrics[k] ?? null));
  return { step: rows.map((r) => r.step), time: rows.map((r) => (Number.isFinite(r.time) ? r.time : 0)), metrics };
}

/** CSV of one metric over several runs: run,step,time,value (RFC 4180 quoting of run ids). */
export function metricCsv(metric: string, runs: { id: string; rows: MetricRow[] }[]): string {
  const q = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const lines = [`run,step,time,${q(metric)}`];
  for (const r of runs) {
    for (const row of r.rows) {
      if (!(metric in row.metrics)) continue;
      const v = row.metrics[metric];
      lines.push(`${q(r.id)},${row.step},${Number.isFinite(row.time) ? row.time : ''},${v === null ? 'NaN' : v}`);
    }
  }
  return lines.join('\n') + '\n';
}
