import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { FIXTURES, tmpDir } from '../helpers';
import { convertFile } from '../../src/data/convert';
import { datasetStats } from '../../src/data/stats';

const D = path.join(FIXTURES, 'datasets');
const lines = (f: string) => fs.readFileSync(f, 'utf8').trim().split('\n').map((l) => JSON.parse(l));

test('K-way rankings become TRL pairwise records, one per comparison, extra fields kept', () => {
  const out = path.join(tmpDir(), 'pairs.rm.jsonl');
  const input = path.join(D, 'shapes.rm.jsonl');
  const before = fs.readFileSync(input);
  const r = convertFile('rm-pairwise', input, out);
  // record 1: ranks [1, 3, 1] -> Apple > Rock, Pear > Rock (Apple = Pear tie gives none); others are not K-way
  assert.deepEqual(lines(out), [
    { prompt: 'Best fruit?', chosen: 'Apple.', rejected: 'Rock.', annotator: 'ann', flags: [] },
    { prompt: 'Best fruit?', chosen: 'Pear.', rejected: 'Rock.', annotator: 'ann', flags: [] },
  ]);
  assert.equal(r.problems.length, 2);
  assert.ok(fs.readFileSync(input).equals(before), 'the input is untouched');
  assert.throws(() => convertFile('rm-pairwise', input, out), /exists/);
  assert.throws(() => convertFile('rm-pairwise', input, input, { force: true }), /never changes its input/);
});

test('HH transcripts become native rankings; messages and prompt/response convert both ways', () => {
  const dir = tmpDir();
  convertFile('hh-native', path.join(D, 'shapes.rm.jsonl'), path.join(dir, 'hh.rm.jsonl'));
  assert.deepEqual(lines(path.join(dir, 'hh.rm.jsonl')), [{ prompt: 'Hi there', responses: ['Hello, how can I help?', 'What.'], ranks: [1, 2] }]);
  convertFile('messages', path.join(D, 'shapes.sft.jsonl'), path.join(dir, 'm.sft.jsonl'));
  const m = lines(path.join(dir, 'm.sft.jsonl'));
  assert.deepEqual(m[0], { messages: [{ role: 'user', content: 'Say hi.' }, { role: 'assistant', content: 'Hi!' }], id: 'a', category: 'chat', meta: { x: 1 } });
  convertFile('prompt-response', path.join(dir, 'm.sft.jsonl'), path.join(dir, 'back.sft.jsonl'));
  assert.deepEqual(lines(path.join(dir, 'back.sft.jsonl'))[0], { prompt: 'Say hi.', response: 'Hi!', id: 'a', category: 'chat', meta: { x: 1 } });
});

test('statistics: lengths, K, ties, categories, annotators and train/eval leaks', () => {
  const s = datasetStats(path.join(D, 'shapes.rm.jsonl'), { evalFile: path.join(D, 'shapes.rm.jsonl') });
  assert.equal(s.records, 3);
  assert.deepEqual(s.k, { 2: 2, 3: 1 });
  assert.equal(s.tie_rate, 1 / 5, '1 tied pair of 3 + 1 + 1');
  assert.deepEqual(s.annotators, { ann: 1 });
  assert.equal(s.leaks!.count, 3);
  assert.deepEqual(s.response_tokens!.max, [...' Hello, how can I help?'].length);
  const p = datasetStats(path.join(D, 'shapes.ppo.jsonl'));
  assert.deepEqual(p.categories, { generation: 0.5, unlabelled: 0.5 });
  const bad = datasetStats(path.join(D, 'bad-ranks.rm.jsonl'));
  assert.deepEqual([bad.records, bad.problems, bad.first_problems[0].line], [1, 6, 1]);
});
