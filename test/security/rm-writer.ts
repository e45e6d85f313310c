/**
 * One writer of the concurrent-writers test: for `ms` milliseconds it appends rankings to FILE and
 * undoes some of its own, as annotators in several windows would. Every acknowledged append and
 * every undo goes to its log (one JSON line each) only after the call returned.
 * Usage: node --import tsx rm-writer.ts FILE LOG MS NAME
 */
import * as fs from 'fs';
import { appendRecord, removeRecord } from '../../src/data/append';
import { rankingRecord } from '../../src/data/ranking-session';

const [file, log, ms, name] = process.argv.slice(2);
const end = Date.now() + Number(ms);
const mine: string[] = [];
let n = 0;
while (Date.now() < end) {
  if (mine.length && Math.random() < 0.3) {
    // undo one of this writer's records, not always the newest (other windows' records lie between)
    const i = Math.random() < 0.7 ? mine.length - 1 : Math.floor(Math.random() * mine.length);
    const [line] = mine.splice(i, 1);
    removeRecord(file, line);
    fs.appendFileSync(log, JSON.stringify({ undo: line }) + '\n');
  } else {
    const line = appendRecord(file, rankingRecord({ prompt: `${name} prompt ${n++} ✓ 日本`, responses: ['a', 'b'], ranks: [1, 2], annotator: name, timeMs: 1, createdAt: new Date(), model: 'm', flags: [], comment: '' }));
    mine.push(line);
    fs.appendFileSync(log, JSON.stringify({ ack: line }) + '\n');
  }
}
