import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { tmpDir } from '../helpers';
import { smooth } from '../../src/data/smoothing';
import { appendRecord, removeRecord } from '../../src/data/append';

test("TensorBoard's debiased EMA, worked by hand; NaN passes through", () => {
  // w = 0.5: last = 0.5, 1.25, (NaN), 2.625; debiased by 1 - 0.5^n for n = 1, 2, 3 finite points
  const s = smooth([1, 2, NaN, 4], 0.5);
  assert.deepEqual([s[0], s[1], s[3]], [1, 1.25 / 0.75, 2.625 / 0.875]);
  assert.ok(Number.isNaN(s[2]));
  assert.deepEqual([...smooth([3, 1, 4], 0)], [3, 1, 4], 'no smoothing at w = 0');
  assert.ok(Math.abs(smooth([5, 5, 5, 5], 0.9)[3] - 5) < 1e-12, 'a constant stays put (no bias toward 0)');
});

test('appended records reach the disk whole; undo removes only its own line, byte for byte', () => {
  const file = path.join(tmpDir(), 'data', 'ranked.rm.jsonl');
  appendRecord(file, { prompt: 'a', responses: ['x', 'y'], ranks: [1, 2] });
  fs.appendFileSync(file, '{"prompt": "no newline at the end"}');
  appendRecord(file, { prompt: 'b', responses: ['x', 'y'], ranks: [2, 1] });
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  assert.deepEqual(lines, ['{"prompt":"a","responses":["x","y"],"ranks":[1,2]}', '{"prompt": "no newline at the end"}', '{"prompt":"b","responses":["x","y"],"ranks":[2,1]}', '']);
  assert.throws(() => removeRecord(file, '{"prompt":"other"}'), /no longer in the file/);
  fs.appendFileSync(file, Buffer.from([0x7b, 0xff, 0xfe, 0x7d, 0x0a])); // someone else's line, invalid UTF-8
  removeRecord(file, lines[0]); // not the last line: the others stay, bytes untouched
  assert.deepEqual(fs.readFileSync(file), Buffer.concat([Buffer.from(lines[1] + '\n' + lines[2] + '\n'), Buffer.from([0x7b, 0xff, 0xfe, 0x7d, 0x0a])]));
  assert.deepEqual(fs.readdirSync(path.dirname(file)), ['ranked.rm.jsonl'], 'no temporary or lock file left');
});

test('smoothing a growing series point by point equals smoothing it whole', async () => {
  const { EmaSmoother } = await import('../../src/data/smoothing');
  const xs = Array.from({ length: 500 }, (_, i) => (i % 50 === 7 ? NaN : Math.sin(i / 9) + i / 100));
  const s = new EmaSmoother(0.9);
  const stepwise = xs.map((x) => s.next(x));
  assert.deepEqual(stepwise, [...smooth(xs, 0.9)]);
});
