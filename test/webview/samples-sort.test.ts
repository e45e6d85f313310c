import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareRows } from '../../webview/dashboard/sample-order';
import { SampleRow } from '../../src/data/samples';

test('the Samples table sorts by any column; rows without the value go last both ways; ties by step', () => {
  const rows: SampleRow[] = [
    { step: 2, prompt: 'b', response: 'x', score: 1 },
    { step: 1, prompt: 'a', response: 'y', score: 3 },
    { step: 3, prompt: 'c', response: 'z' },
    { step: 4, prompt: 'a', response: 'w', score: 1 },
  ];
  const order = (key: Parameters<typeof compareRows>[2], dir: 1 | -1) => [...rows].sort((a, b) => compareRows(a, b, key, dir)).map((r) => r.step);
  assert.deepEqual(order('score', -1), [1, 2, 4, 3]);
  assert.deepEqual(order('score', 1), [2, 4, 1, 3]);
  assert.deepEqual(order('prompt', 1), [1, 4, 2, 3]);
  assert.deepEqual(order('response', -1), [3, 1, 2, 4]);
});
