import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { tmpDir } from '../helpers';
import { loadPrompts, nextPrompt, perHour, rankingRecord, readRankingFile } from '../../src/data/ranking-session';
import { appendRecord } from '../../src/data/append';
import { readDataset } from '../../src/data/reader';

test('prompts come from PPO files and from RM files (each prompt once)', () => {
  const dir = tmpDir();
  const ppo = path.join(dir, 'p.ppo.jsonl'), rm = path.join(dir, 'r.rm.jsonl');
  fs.writeFileSync(ppo, '{"prompt":"a"}\n{"messages":[{"role":"user","content":"b"}]}\n{"prompt":""}\n');
  fs.writeFileSync(rm, '{"prompt":"x","responses":["1","2"],"ranks":[1,2]}\n{"prompt":"x","responses":["3","4"],"ranks":[2,1]}\n{"prompt":"y","chosen":"c","rejected":"d"}\n');
  assert.deepEqual(loadPrompts(ppo).map((p) => p.prompt), ['a', 'b']);
  assert.equal(loadPrompts(ppo)[0].context, 'Human: a\n\nAssistant: ');
  assert.deepEqual(loadPrompts(rm).map((p) => p.prompt), ['x', 'y']);
});

test('a session resumes from the RM file: prompts this annotator ranked are done, others\' are not', () => {
  const file = path.join(tmpDir(), 'out.rm.jsonl');
  const items = ['a', 'b', 'c'].map((prompt) => ({ prompt, context: prompt }));
  const rec = (prompt: string, annotator: string) => rankingRecord({ prompt, responses: ['x', 'y'], ranks: [1, 2], annotator, timeMs: 1000, createdAt: new Date(0), model: 'm', flags: [], comment: '' });
  appendRecord(file, rec('a', 'ann'));
  appendRecord(file, rec('b', 'someone else'));
  const done = readRankingFile(file, 'ann').ranked;
  assert.deepEqual([...done], ['a']);
  assert.equal(nextPrompt(items, done, new Set()), 1);
  assert.equal(nextPrompt(items, done, new Set([1])), 2, 'skipped prompts come last');
  assert.equal(nextPrompt(items, new Set(['a', 'b', 'c']), new Set()), -1);
});

test('a submission is one K-way record of the spec, fields in order, valid for the RM reader', () => {
  const r = rankingRecord({ prompt: 'p', responses: ['a', 'b', 'c'], ranks: [2, 1, 2], annotator: 'ann', timeMs: 1234.4, createdAt: new Date('2026-11-29T10:00:00Z'), model: 'runs/sft/final', flags: ['unsafe'], comment: 'hm', id: 'rank-1' });
  assert.equal(JSON.stringify(r), '{"prompt":"p","responses":["a","b","c"],"ranks":[2,1,2],"annotator":"ann","time_ms":1234,"created_at":"2026-11-29T10:00:00.000Z","model":"runs/sft/final","flags":["unsafe"],"comment":"hm","id":"rank-1"}');
  const made = (n: number) => rankingRecord({ prompt: 'p', responses: ['a', 'b'], ranks: [1, 2], annotator: 'a', timeMs: 1, createdAt: new Date(), model: '', flags: [], comment: '', id: undefined }).id;
  assert.notEqual(made(1), made(2), 'each record gets its own id (undo finds its line by it)');
  const file = path.join(tmpDir(), 'x.rm.jsonl');
  appendRecord(file, r);
  assert.deepEqual(readDataset(file), { file, stage: 'rm', records: 1, problems: 0, lines: 1, bytes: fs.statSync(file).size });
  assert.throws(() => rankingRecord({ prompt: 'p', responses: ['a'], ranks: [1, 2], annotator: '', timeMs: 0, createdAt: new Date(), model: '', flags: [], comment: '' }));
});

test('pace is rankings per hour of ranking time', () => {
  assert.equal(perHour([]), null);
  assert.equal(perHour([30_000, 90_000]), 60);
});
