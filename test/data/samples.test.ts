import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { MAX_SAMPLE_TEXT, parseSampleLine, toSampleRow } from '../../src/data/samples';
import { JsonlTail } from '../../src/data/metrics-tail';
import { tmpDir } from '../helpers';

test('a samples.jsonl line is read with its optional scores; anything else is not a sample', () => {
  const row = { step: 3, prompt: 'Tell me', response: 'A fun place.', score: 1.5, gold: 2, kl: 0.25, advantage: -0.1 };
  assert.deepEqual(parseSampleLine(JSON.stringify(row)), row);
  assert.deepEqual(parseSampleLine('{"step":1,"prompt":"p","response":"r","kl":null}'), { step: 1, prompt: 'p', response: 'r', kl: null });
  for (const bad of ['', '   ', '{"step":1,"prompt":"p"', '[1,2]', 'null', '{"prompt":"p","response":"r"}', '{"step":"1","prompt":"p","response":"r"}',
    '{"step":1,"prompt":2,"response":"r"}', '{"step":1,"prompt":"p","response":"r","score":"high"}', '{"step":1,"prompt":"p","response":"r","score":1e999}'])
    assert.equal(parseSampleLine(bad), undefined, bad);
  const long = toSampleRow({ step: 1, prompt: 'x'.repeat(MAX_SAMPLE_TEXT + 10), response: 'r' })!;
  assert.equal(long.prompt.length, MAX_SAMPLE_TEXT + 1, 'cut, with an ellipsis');
  assert.ok(long.prompt.endsWith('…'));
});

test('the samples tail returns whole new lines, skips torn ones, and starts over when a resume truncates the file', () => {
  const file = path.join(tmpDir(), 'samples.jsonl');
  const tail = new JsonlTail(file, parseSampleLine);
  assert.deepEqual(tail.read(), { reset: false, rows: [] });
  const line = (step: number) => JSON.stringify({ step, prompt: 'p', response: `r${step}`, score: step }) + '\n';
  fs.writeFileSync(file, line(1) + line(2) + '{"step":3,"prom');
  assert.deepEqual(tail.read().rows.map((r) => r.step), [1, 2]);
  fs.appendFileSync(file, 'pt":"p","response":"r3"}\nnot json\n');
  assert.deepEqual(tail.read().rows.map((r) => r.step), [3]);
  assert.equal(tail.bad, 1);
  fs.writeFileSync(file, line(1));
  assert.deepEqual(tail.read(), { reset: true, rows: [{ step: 1, prompt: 'p', response: 'r1', score: 1 }] });
});
