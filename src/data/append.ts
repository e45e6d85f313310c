/**
 * Writing rankings without losing any: each submission is appended as one line and flushed to
 * disk (fsync) before the caller moves on, so a crash keeps every record already submitted;
 * undoing the last one rewrites the file atomically (temporary file, fsync, rename).
 */
import * as fs from 'fs';
import * as path from 'path';

/** Appends one record as a JSON line (starting a new line if the file lacks a final newline). */
export function appendRecord(file: string, record: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const fd = fs.openSync(file, 'a+');
  try {
    const size = fs.fstatSync(fd).size;
    let prefix = '';
    if (size > 0) {
      const last = Buffer.alloc(1);
      fs.readSync(fd, last, 0, 1, size - 1);
      if (last[0] !== 10) prefix = '\n';
    }
    fs.writeSync(fd, prefix + JSON.stringify(record) + '\n');
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Removes the last record (the last non-blank line), atomically. Returns it, or undefined when the
 * file has none. With `expected`, refuses unless the last record is that exact line.
 */
export function removeLastRecord(file: string, expected?: string): string | undefined {
  if (!fs.existsSync(file)) return undefined;
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  let i = lines.length - 1;
  while (i >= 0 && !lines[i].trim()) i--;
  if (i < 0) return undefined;
  const removed = lines[i];
  if (expected !== undefined && removed !== expected) throw new Error(`${file}: the last record is not the one to undo (it changed on disk)`);
  const kept = lines.slice(0, i).join('\n');
  writeFileAtomic(file, kept.length ? kept + '\n' : '');
  return removed;
}

/** Replaces a file whole or not at all: a temporary file, flushed to disk, renamed over it. */
export function writeFileAtomic(file: string, data: string | Buffer): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}
