/**
 * Streams the lines of a file of any size without loading it: fixed-size chunks, newline search
 * in native code (Buffer.indexOf), lines that span chunks stitched together. Each line comes with
 * its 1-based number and byte offset; a trailing "\r" (CRLF) is removed. A line longer than
 * maxLineBytes is reported by length and skipped without being held in memory.
 */
import * as fs from 'fs';
import { openRegular } from './durable';

export interface LineSink {
  line(bytes: Buffer, lineNo: number, offset: number): void;
  /** A line longer than the limit (its bytes are not kept). */
  tooLong?(lineNo: number, offset: number, length: number): void;
}

export interface LineStats {
  lines: number;
  bytes: number;
  /** The file does not end with a newline (the last line may be truncated). */
  unterminated: boolean;
}

/** `start`/`end`: a byte range (start at a line's first byte); line numbers count from the range's start. */
export function forEachLine(file: string, sink: LineSink, opts: { chunkBytes?: number; maxLineBytes?: number; start?: number; end?: number } = {}): LineStats {
  const chunkBytes = opts.chunkBytes ?? 1 << 22;
  const maxLine = opts.maxLineBytes ?? 64 << 20;
  const { fd } = openRegular(file); // a FIFO would block, a device never end
  const buf = Buffer.allocUnsafe(chunkBytes);
  const first = opts.start ?? 0, end = opts.end ?? Infinity;
  let pos = first, lineNo = 0, lineStart = first;
  let carry: Buffer[] = [], carryLen = 0, skipping = false;
  const emit = (b: Buffer, offset: number) => {
    lineNo++;
    const end = b.length && b[b.length - 1] === 13 ? b.length - 1 : b.length;
    sink.line(b.subarray(0, end), lineNo, offset);
  };
  try {
    for (;;) {
      const n = fs.readSync(fd, buf, 0, Math.min(chunkBytes, end - pos), pos);
      if (n === 0) break;
      let i = 0;
      while (i < n) {
        const nl = buf.indexOf(10, i);
        const end = nl === -1 || nl >= n ? n : nl;
        if (nl === -1 || nl >= n) {
          // the line continues in the next chunk
          if (!skipping) {
            if (carryLen + (end - i) > maxLine) {
              skipping = true;
              carry = [];
            } else carry.push(Buffer.from(buf.subarray(i, end)));
          }
          carryLen += end - i;
          break;
        }
        if (skipping || carryLen + (end - i) > maxLine) {
          lineNo++;
          sink.tooLong?.(lineNo, lineStart, carryLen + (end - i));
        } else if (carryLen) {
          carry.push(buf.subarray(i, end));
          emit(Buffer.concat(carry), lineStart);
        } else emit(buf.subarray(i, end), lineStart);
        carry = [];
        carryLen = 0;
        skipping = false;
        lineStart = pos + end + 1;
        i = end + 1;
      }
      pos += n;
    }
    const unterminated = carryLen > 0;
    if (unterminated) {
      if (skipping) {
        lineNo++;
        sink.tooLong?.(lineNo, lineStart, carryLen);
      } else emit(Buffer.concat(carry), lineStart);
    }
    return { lines: lineNo, bytes: pos - first, unterminated };
  } finally {
    fs.closeSync(fd);
  }
}
