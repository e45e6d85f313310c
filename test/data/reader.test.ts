import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { FIXTURES, tmpDir } from '../helpers';
import { StageRecord, checkText, readDataset, sniffStage } from '../../src/data/reader';
import { buildIndex, readRecordBytes } from '../../src/data/record-index';
import { Problem, formatProblem } from '../../src/data/jsonl';

const D = path.join(FIXTURES, 'datasets');

function read(file: string) {
  const records: StageRecord[] = [], problems: string[] = [];
  const s = readDataset(path.join(D, file), { onRecord: (r) => records.push(r), onProblem: (p: Problem) => problems.push(formatProblem(p).replace(D + '/', '')) });
  return { records, problems, s };
}

test('every accepted shape normalises to its stage type', () => {
  const sft = read('shapes.sft.jsonl');
  assert.deepEqual(sft.problems, []);
  assert.equal(sft.s.stage, 'sft');
  assert.equal(sft.records.length, 4);
  const trained = sft.records.map((r) => ('segments' in r ? r.segments.filter((s) => s.train).map((s) => s.text).join('|') : ''));
  assert.deepEqual(trained, ['Hi!', ' cat', '4', 'Plain language-modelling text.']);
  const rm = read('shapes.rm.jsonl');
  assert.deepEqual(rm.problems, []);
  const rankings = rm.records as { prompt: string; responses: string[]; ranks: number[]; margin?: number }[];
  assert.deepEqual(rankings[0].ranks, [1, 3, 1]);
  assert.deepEqual([rankings[1].responses, rankings[1].ranks, rankings[1].margin], [['Hello!', 'Go away.'], [1, 2], 0.5]);
  assert.deepEqual([rankings[2].prompt, rankings[2].responses], ['\n\nHuman: Hi there\n\nAssistant:', [' Hello, how can I help?', ' What.']]);
  const ppo = read('shapes.ppo.jsonl');
  assert.deepEqual(ppo.problems, []);
  assert.deepEqual(ppo.records.map((r) => ('context' in r ? r.context : '')), ['Human: Write a poem.\n\nAssistant: ', 'Human: Tell me a joke.\n\nAssistant: ']);
});

test('BOM, CRLF and blank lines are accepted', () => {
  const r = read('bom-crlf-blank.sft.jsonl');
  assert.deepEqual(r.problems, []);
  assert.equal(r.records.length, 2);
  assert.deepEqual(r.records.map((x) => x.line), [1, 4]);
});

test('each bad line is reported at its line and the good ones still come through', () => {
  assert.deepEqual(read('invalid-utf8.sft.jsonl').problems, ['invalid-utf8.sft.jsonl:2: invalid UTF-8']);
  assert.equal(read('invalid-utf8.sft.jsonl').records.length, 2);
  const t = read('truncated.rm.jsonl');
  assert.equal(t.records.length, 1);
  assert.match(t.problems[0], /^truncated\.rm\.jsonl:2: invalid JSON .*the last line looks truncated$/);
  const n = read('non-object.ppo.jsonl');
  assert.deepEqual(n.problems.map((p) => p.split(': ').slice(0, 2).join(': ')), [
    'non-object.ppo.jsonl:2: a record must be a JSON object, not an array',
    'non-object.ppo.jsonl:3: a record must be a JSON object, not a string',
    'non-object.ppo.jsonl:4: a record must be a JSON object, not null',
    'non-object.ppo.jsonl:5: a record must be a JSON object, not a number',
    'non-object.ppo.jsonl:6: invalid JSON (Expected property name or \'}\' in JSON at position 1)',
  ]);
  assert.deepEqual(read('duplicate-ids.sft.jsonl').problems, ['duplicate-ids.sft.jsonl:3: duplicate id "7" (first on line 1)']);
  const ranks = read('bad-ranks.rm.jsonl');
  assert.deepEqual(ranks.problems.map((p) => p.split(':')[1]), ['1', '2', '3', '4', '6', '7']);
  assert.equal(ranks.records.length, 1);
});

test('a 50 MB single line is read, and one over the limit is reported without being held', () => {
  const file = path.join(tmpDir(), 'big.sft.jsonl');
  const fd = fs.openSync(file, 'w');
  fs.writeSync(fd, '{"prompt": "short", "response": "ok"}\n{"prompt": "long", "response": "');
  const block = Buffer.alloc(1 << 20, 'a');
  for (let i = 0; i < 50; i++) fs.writeSync(fd, block);
  fs.writeSync(fd, '"}\n{"prompt": "after", "response": "ok"}\n');
  fs.closeSync(fd);
  let longest = 0;
  const ok = readDataset(file, { onRecord: (r) => { if ('segments' in r) longest = Math.max(longest, r.segments[1].text.length); } });
  assert.deepEqual([ok.records, ok.problems, longest], [3, 0, 50 << 20]);
  const problems: Problem[] = [];
  const capped = readDataset(file, { maxLineBytes: 1 << 20, onProblem: (p) => problems.push(p) });
  assert.equal(capped.records, 2);
  assert.equal(problems.length, 1);
  // the line is the 32-byte head, 50 MiB of a, and the closing '"}'
  assert.match(formatProblem(problems[0]), new RegExp(`:2: line of ${32 + (50 << 20) + 2} bytes is over the size limit of 1048576 bytes$`));
  const index = buildIndex(file, 1 << 16);
  assert.equal(index.count, 3);
  assert.equal(readRecordBytes(index, 2).toString(), '{"prompt": "after", "response": "ok"}');
});

test('the index opens record N directly, with its line number, across chunk boundaries', () => {
  const file = path.join(tmpDir(), 'many.rm.jsonl');
  const lines: string[] = ['\ufeff' + JSON.stringify({ id: 0 })];
  for (let i = 1; i < 5000; i++) lines.push(i % 7 === 0 ? '' : JSON.stringify({ id: i, pad: 'x'.repeat(i % 300) }) + (i % 2 ? '\r' : ''));
  fs.writeFileSync(file, lines.join('\n'));
  const index = buildIndex(file, 4096); // small chunks: many records span two
  const expected = lines.map((l, i) => ({ l: l.replace('\ufeff', '').replace(/\r$/, ''), line: i + 1 })).filter((x) => x.l.trim());
  assert.equal(index.count, expected.length);
  for (const n of [0, 1, 2, 500, 1234, expected.length - 1]) {
    assert.equal(readRecordBytes(index, n).toString(), expected[n].l, `record ${n}`);
    assert.equal(index.lineNos[n], expected[n].line);
  }
  assert.throws(() => readRecordBytes(index, expected.length), RangeError);
});

test('plain *.jsonl files are sniffed from their fields', () => {
  assert.equal(sniffStage({ prompt: 'p', responses: [], ranks: [] }), 'rm');
  assert.equal(sniffStage({ chosen: 'a', rejected: 'b' }), 'rm');
  assert.equal(sniffStage({ prompt: 'p', response: 'r' }), 'sft');
  assert.equal(sniffStage({ messages: [{ role: 'user', content: 'q' }] }), 'ppo');
  assert.equal(sniffStage({ messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }] }), 'sft');
  assert.equal(sniffStage({ prompt: 'p' }), 'ppo');
  assert.equal(sniffStage({ text: 't' }), 'pretrain');
});

test('the editor\'s text check reports what the file reader reports', () => {
  for (const f of fs.readdirSync(D).filter((x) => x.endsWith('.jsonl') && !x.includes('utf8'))) {
    const file = path.join(D, f);
    const fromFile: string[] = [], fromText: string[] = [];
    readDataset(file, { onProblem: (p) => fromFile.push(formatProblem(p)) });
    checkText(file, fs.readFileSync(file, 'utf8'), { onProblem: (p) => fromText.push(formatProblem(p)) });
    assert.deepEqual(fromText, fromFile, f);
  }
});
