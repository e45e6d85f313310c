import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { tmpDir } from '../helpers';
import { appendRecord } from '../../src/data/append';
import { readRankingFile, rankingRecord } from '../../src/data/ranking-session';
import { insideFolder } from '../../src/data/durable';

const rec = (prompt: string) => rankingRecord({ prompt, responses: ['a', 'b'], ranks: [1, 2], annotator: 'me', timeMs: 1, createdAt: new Date(), model: 'm', flags: [], comment: '' });

test('finding 5 as found: a hostile line elsewhere in the RM file does not make the re-read after a submit throw', () => {
  const file = path.join(tmpDir(), 'shared.rm.jsonl');
  // today's code threw RangeError re-reading this line, after the submission was already saved
  fs.writeFileSync(file, '{"prompt":"x","chosen":"a","rejected":"b","id":' + '['.repeat(100_000) + ']'.repeat(100_000) + '}\n');
  appendRecord(file, rec('mine'));
  const read = readRankingFile(file, 'me');
  assert.deepEqual([...read.ranked], ['mine'], 'the saved ranking counts; the hostile line is a problem of its own');
});

test('finding 9 as found: a committed symlink that sends the ranking file outside the workspace is caught', () => {
  const ws = tmpDir();
  const outside = path.join(tmpDir(), 'elsewhere.rm.jsonl');
  fs.writeFileSync(outside, '');
  fs.mkdirSync(path.join(ws, 'data'));
  fs.symlinkSync(outside, path.join(ws, 'data', 'rankings.rm.jsonl'));
  fs.symlinkSync(path.dirname(outside), path.join(ws, 'linked-dir'));
  // a path comparison alone says "inside" for both
  assert.equal(path.relative(ws, path.join(ws, 'data', 'rankings.rm.jsonl')).startsWith('..'), false);
  assert.equal(insideFolder(path.join(ws, 'data', 'rankings.rm.jsonl'), ws), false, 'a linked file');
  assert.equal(insideFolder(path.join(ws, 'linked-dir', 'new.rm.jsonl'), ws), false, 'a new file in a linked folder');
  assert.equal(insideFolder(path.join(ws, 'data', 'new.rm.jsonl'), ws), true, 'a new file in a real folder');
  assert.equal(insideFolder(path.join(ws, 'data', '..', '..', 'x.rm.jsonl'), ws), false);
});
