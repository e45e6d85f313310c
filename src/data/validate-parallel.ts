/**
 * Validating a large dataset on every core: the file is cut at line boundaries into one part per
 * core, each part is checked on a worker thread (src/data/scan-worker.ts) by the reader's own
 * RecordChecker, and the answers are put back in file order. The result is the single-threaded
 * reader's, line for line:
 *   - line numbers are the part's own plus the lines of the parts before it;
 *   - an id that repeats one from an earlier part is a duplicate there (and not a record), as the
 *     reader would say ("first on line N"), found by comparing the parts' ids;
 *   - a bad last line is "truncated" only in the last part (only it ends where the file ends).
 * A part with more than PART_PROBLEM_CAP problems stops collecting them and the file is read again
 * by the single-threaded reader, which streams its problems instead of holding them.
 */
import * as fs from 'fs';
import * as os from 'os';
import { Worker } from 'worker_threads';
import { openRegular } from './durable';
import { Problem, parseJsonLine } from './jsonl';
import { RecordChecker, ReadOptions, ReadSummary, Stage, readDataset, sniffStage, stageFromName } from './reader';
import { forEachLine } from './lines';

/** Smaller files are read by one thread: starting workers costs more than it saves. */
export const PARALLEL_MIN_BYTES = 32 << 20;
export const PART_PROBLEM_CAP = 10_000;

export interface PartRequest {
  file: string;
  start: number;
  end: number;
  stage: Stage;
  maxLineBytes?: number;
  last: boolean;
}

export interface PartResult {
  records: number;
  lines: number;
  /** null when the part had more than PART_PROBLEM_CAP. */
  problems: Problem[] | null;
  /** JSON of [ids, their lines]: one string crosses threads far faster than 400k small ones. */
  ids: string;
}

/** One part, on whichever thread calls it (the scan worker, or a test). */
export function validatePart(p: PartRequest): PartResult {
  const problems: Problem[] = [];
  let over = false;
  const c = new RecordChecker(p.file, {
    stage: p.stage,
    maxLineBytes: p.maxLineBytes,
    onProblem: (x) => (problems.length < PART_PROBLEM_CAP ? problems.push(x) : (over = true)),
  });
  const stats = forEachLine(p.file, { line: (b, n) => c.bytes(b, n), tooLong: (n, _o, len) => c.tooLong(n, len) }, { maxLineBytes: p.maxLineBytes, start: p.start, end: p.end });
  c.finish(stats.lines, p.last && stats.unterminated);
  return { records: c.records, lines: stats.lines, problems: over ? null : problems, ids: JSON.stringify(c.idList()) };
}

/** The stage of a file whose name does not say it: its first record's fields (as the reader sniffs). */
function sniffFile(file: string): Stage | undefined {
  const fd = openRegular(file).fd;
  try {
    const b = Buffer.alloc(1 << 20);
    const n = fs.readSync(fd, b, 0, b.length, 0);
    // the complete lines of the first megabyte, as the reader takes them (CR dropped)
    for (let start = 0, nl = b.indexOf(10); nl >= 0 && nl < n; start = nl + 1, nl = b.indexOf(10, start)) {
      const end = nl > start && b[nl - 1] === 13 ? nl - 1 : nl;
      const r = parseJsonLine(b.subarray(start, end));
      if (r && 'value' in r) return sniffStage(r.value);
    }
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/** Byte offsets where parts start: just after a newline near each k/n of the file. */
function boundaries(file: string, size: number, n: number): number[] {
  const fd = openRegular(file).fd;
  const out = [0];
  try {
    const b = Buffer.alloc(1 << 16);
    for (let k = 1; k < n; k++) {
      let pos = Math.max(Math.floor((k * size) / n), out[out.length - 1]);
      for (;;) {
        const got = fs.readSync(fd, b, 0, b.length, pos);
        if (got === 0) return out;
        const nl = b.subarray(0, got).indexOf(10);
        if (nl >= 0) {
          if (pos + nl + 1 < size) out.push(pos + nl + 1);
          break;
        }
        pos += got;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return [...new Set(out)];
}

function runPart(script: string, p: PartRequest): Promise<PartResult> {
  return new Promise((resolve, reject) => {
    const w = new Worker(script);
    w.once('message', (m: { type: string; result?: PartResult; message?: string }) => {
      void w.terminate();
      if (m.type === 'part' && m.result) resolve(m.result);
      else reject(new Error(m.message ?? 'the validation thread failed'));
    });
    w.once('error', reject);
    w.postMessage({ type: 'part', id: 1, ...p });
  });
}

/**
 * Reads a dataset like readDataset, on `threads` threads when the file is large; problems come to
 * `onProblem` in file order. `script` is the scan worker's bundle.
 */
export async function readDatasetParallel(file: string, o: ReadOptions & { script: string; threads?: number; minBytes?: number }): Promise<ReadSummary> {
  const threads = o.threads ?? Math.min(8, os.availableParallelism?.() ?? os.cpus().length);
  const size = openRegularSize(file);
  const min = o.minBytes ?? PARALLEL_MIN_BYTES;
  const stage = o.stage ?? stageFromName(file) ?? (size >= min ? sniffFile(file) : undefined);
  if (threads < 2 || size < min || !stage || stage === 'pretrain' || o.onRecord) return readDataset(file, o);
  const starts = boundaries(file, size, threads);
  const parts = await Promise.all(starts.map((start, k) => runPart(o.script, { file, start, end: starts[k + 1] ?? size, stage, maxLineBytes: o.maxLineBytes, last: k === starts.length - 1 })));
  if (parts.some((p) => p.problems === null)) return readDataset(file, o); // too many to hold: stream them
  const problems: Problem[] = [];
  const firstLine = new Map<string, number>();
  let offset = 0, records = 0;
  parts.forEach((p, k) => {
    for (const x of p.problems!) problems.push({ ...x, line: x.line + offset });
    records += p.records;
    const [ids, lines] = JSON.parse(p.ids) as [string[], number[]];
    const lastPart = k === parts.length - 1;
    for (let i = 0; i < ids.length; i++) {
      const first = firstLine.get(ids[i]);
      if (first !== undefined) {
        // counted as a record by its part, which could not see the earlier one
        records--;
        problems.push({ file, line: lines[i] + offset, message: `duplicate id ${JSON.stringify(ids[i])} (first on line ${first})` });
      } else if (!lastPart) firstLine.set(ids[i], lines[i] + offset); // nothing after the last part to compare
    }
    offset += p.lines;
  });
  problems.sort((a, b) => a.line - b.line);
  for (const x of problems) o.onProblem?.(x);
  return { file, stage, records, problems: problems.length, lines: offset, bytes: size };
}

function openRegularSize(file: string): number {
  const { fd, size } = openRegular(file);
  fs.closeSync(fd);
  return size;
}
