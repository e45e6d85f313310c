import { test } from 'node:test';
import assert from 'node:assert/strict';
import { m4 } from '../../webview/dashboard/decimate';

test('M4 keeps each column\'s first, last, minimum and maximum of every series', () => {
  const x = Array.from({ length: 1000 }, (_, i) => i);
  const a = x.map((i) => Math.sin(i / 3));
  const b = x.map((i) => (i === 500 ? 99 : i % 7 === 0 ? null : -i));
  const keep = m4(x, [a, b], 10);
  assert.ok(keep.length <= 10 * 6 && keep.length >= 20, `${keep.length} kept`);
  assert.deepEqual([...keep].sort((p, q) => p - q), keep, 'ascending');
  assert.ok(keep.includes(0) && keep.includes(999), 'the ends');
  assert.ok(keep.includes(500), 'the spike of series b');
  // in every column, the extremes of series a are kept
  for (let c = 0; c < 10; c++) {
    const ids = x.slice(c * 100, c * 100 + 100);
    const min = ids.reduce((p, i) => (a[i] < a[p] ? i : p)), max = ids.reduce((p, i) => (a[i] > a[p] ? i : p));
    assert.ok(keep.includes(min) && keep.includes(max), `column ${c}`);
  }
});

test('few points are all kept; a zoomed range keeps one point beyond each edge', () => {
  assert.deepEqual(m4([1, 2, 3], [[1, 2, 3]], 10), [0, 1, 2]);
  const x = Array.from({ length: 100 }, (_, i) => i);
  assert.deepEqual(m4(x, [x], 100, 10, 20), Array.from({ length: 13 }, (_, i) => 9 + i));
});
