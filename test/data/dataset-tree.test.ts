import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'path';
import { FIXTURES } from '../helpers';
import { FileEntry, PAGE, fileNodes, recordLabel, recordNodes, recordPreview, stageNodes } from '../../src/data/dataset-tree';
import { buildIndex, readRecordBytes } from '../../src/data/record-index';
import { readDataset } from '../../src/data/reader';
import { datasetStats } from '../../src/data/stats';

const D = path.join(FIXTURES, 'datasets');
const entry = (f: string): FileEntry => {
  const file = path.join(D, f);
  const s = readDataset(file);
  return { path: file, stage: s.stage, records: s.records, problems: s.problems, bytes: s.bytes, stats: datasetStats(file) };
};

test('the tree groups files by stage with record and error counts', () => {
  const files = ['shapes.sft.jsonl', 'duplicate-ids.sft.jsonl', 'shapes.rm.jsonl', 'bad-ranks.rm.jsonl'].map(entry);
  const stages = stageNodes(files);
  assert.deepEqual(stages.map((s) => [s.label, (s as { description: string }).description]), [['Pretraining', 'no files'], ['SFT', '2 files, 6 records'], ['RM', '2 files, 4 records'], ['PPO', 'no files']]);
  assert.deepEqual(stageNodes([]), [], 'a folder without datasets: no rows, so the view shows its welcome text');
  const rm = fileNodes(files, 'rm', D);
  assert.deepEqual(rm.map((n) => [n.label, (n as { description: string }).description]), [['bad-ranks.rm.jsonl', '1 record · 6 errors · .'], ['shapes.rm.jsonl', '3 records · .']]);
  const tip = (rm[1] as { tooltip: string }).tooltip;
  assert.match(tip, /K: 2 × 2, 3 × 1 · ties 20\.0% of pairs/);
  assert.match(tip, /annotators: ann \(1\)/);
});

test('records come 100 at a time with a "Show more" node, labelled from their fields', () => {
  const n = 250;
  const raw = (i: number) => ({ line: i * 2 + 1, value: { prompt: `question ${i}`, responses: ['a', 'b'], ranks: [1, 2] } });
  const first = recordNodes('/x.rm.jsonl', 'rm', n, PAGE, raw);
  assert.equal(first.length, PAGE + 1);
  assert.deepEqual([first[0].label, (first[0] as { description: string }).description, (first[0] as { line: number }).line], ['1. question 0', 'K = 2 · ranks 1 2', 1]);
  assert.deepEqual(first[PAGE], { kind: 'more', id: '/x.rm.jsonl'.replace(/^/, 'more:') + ':100', path: '/x.rm.jsonl', shown: 100, label: 'Show more (150 left)' });
  assert.equal(recordNodes('/x.rm.jsonl', 'rm', n, 300, raw).length, 250);
  assert.deepEqual(recordLabel('sft', { messages: [{ role: 'user', content: 'hi\nthere' }, { role: 'assistant', content: 'yo' }] }), { label: 'hi there', description: 'yo' });
});

test('record nodes read through the index, and the preview lists responses best first', () => {
  const file = path.join(D, 'shapes.rm.jsonl');
  const index = buildIndex(file);
  const nodes = recordNodes(file, 'rm', index.count, PAGE, (n) => ({ line: index.lineNos[n], value: JSON.parse(readRecordBytes(index, n).toString()) }));
  assert.deepEqual(nodes.map((x) => x.label), ['1. Best fruit?', '2. Greet.', '3. Human: Hi there Assistant: Hello, how can I help?']);
  const md = recordPreview(file, 1, JSON.parse(readRecordBytes(index, 0).toString()));
  assert.ok(md.indexOf('Rank 1 — response 1') < md.indexOf('Rank 1 — response 3'));
  assert.ok(md.indexOf('Rank 1 — response 3') < md.indexOf('Rank 3 — response 2'));
  assert.match(md, /- \*\*annotator\*\*: ann/);
});
