/**
 * Writing rankings without losing any, whoever else writes the same file.
 *
 * Every writer of an RM file (the ranking panel in any window, `rlhf`, a colleague on a shared
 * folder) takes the file's lock (`FILE.lock`, src/data/durable.ts) around each change:
 *   - a submission is appended as one line and flushed to disk (file, and the folder when the file
 *     is new) before it is acknowledged;
 *   - an undo re-reads the file under the lock and removes only its own line, found byte for byte
 *     (each ranking carries a unique `id`), keeping every other byte of the file as it was (even
 *     invalid UTF-8), then replaces the file atomically.
 * A writer that does not take the lock (an editor saving the file) can still race an undo; the
 * README says so.
 */
import * as fs from 'fs';
import * as path from 'path';
import { fsyncDir, withLock, writeFileAtomic } from './durable';

export { writeFileAtomic };

export const lockFileOf = (file: string) => `${file}.lock`;

/** Appends one record as a JSON line (a new line first if the file lacks a final newline); returns the line. */
export function appendRecord(file: string, record: unknown): string {
  const line = JSON.stringify(record);
  appendLine(file, line);
  return line;
}

/** Appends several records under one lock with one flush (a judge's or a pipeline's votes); returns their lines. */
export function appendRecords(file: string, records: unknown[]): string[] {
  const lines = records.map((r) => JSON.stringify(r));
  if (lines.length) appendLine(file, ...lines);
  return lines;
}

export function appendLine(file: string, ...lines: string[]): void {
  if (lines.some((line) => line.includes('\n'))) throw new Error('a record must be one line');
  const dir = path.dirname(path.resolve(file));
  fs.mkdirSync(dir, { recursive: true });
  withLock(lockFileOf(file), () => {
    const created = !fs.existsSync(file);
    const fd = fs.openSync(file, 'a+');
    try {
      const size = fs.fstatSync(fd).size;
      let prefix = '';
      if (size > 0) {
        const last = Buffer.alloc(1);
        fs.readSync(fd, last, 0, 1, size - 1);
        if (last[0] !== 10) prefix = '\n';
      }
      fs.writeSync(fd, prefix + lines.join('\n') + '\n');
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    if (created) fsyncDir(dir);
  }, { what: 'appending a record' });
}

/**
 * Removes the last line equal to `line` (byte for byte), under the file's lock; every other byte
 * stays as it was. Throws when the line is not in the file (someone else removed or edited it).
 */
export function removeRecord(file: string, line: string): void {
  withLock(lockFileOf(file), () => {
    const bytes = fs.readFileSync(file);
    const at = findLine(bytes, Buffer.from(line, 'utf8'));
    if (at < 0) throw new Error(`${file}: the record to undo is no longer in the file (it was removed or edited); nothing was changed`);
    let end = at + Buffer.byteLength(line);
    if (bytes[end] === 13) end++;
    if (bytes[end] === 10) end++;
    writeFileAtomic(file, Buffer.concat([bytes.subarray(0, at), bytes.subarray(end)]));
  }, { what: 'undoing a record' });
}

/** Byte offset of the last whole line equal to `line`, or -1. */
function findLine(bytes: Buffer, line: Buffer): number {
  for (let at = bytes.lastIndexOf(line); at >= 0; at = at > 0 ? bytes.lastIndexOf(line, at - 1) : -1) {
    const end = at + line.length;
    const startsLine = at === 0 || bytes[at - 1] === 10;
    const endsLine = end === bytes.length || bytes[end] === 10 || (bytes[end] === 13 && (end + 1 === bytes.length || bytes[end + 1] === 10));
    if (startsLine && endsLine) return at;
  }
  return -1;
}
