import { test } from 'node:test';
import assert from 'node:assert/strict';
import { completed, describe, moveTo, place, rankOf, ranksOf, tie } from '../../webview/ranking/order';

test('digit keys in order of preference: the first pressed is best', () => {
  let o = place([], 2); // response 3 best
  o = place(o, 0);
  o = place(o, 0); // pressing a ranked response again changes nothing
  assert.equal(ranksOf(o, 4), undefined, 'two of four placed: not complete');
  o = place(o, 3);
  assert.deepEqual(ranksOf(o, 4), [2, 4, 1, 3], 'the last one left is last');
  assert.equal(describe(completed(o, 4)!), '3 > 1 > 4 > 2');
});

test('the tie key joins the last response to the rank above; ranks have no gaps', () => {
  const o = tie(place(place(place([], 1), 0), 3)); // 2 > 1 = 4
  assert.deepEqual(o, [[1], [0, 3]]);
  assert.deepEqual(ranksOf(o, 4), [2, 1, 3, 2]);
  assert.equal(rankOf(o, 3), 2);
  assert.deepEqual(tie([[0]]), [[0]], 'nothing above the first');
});

test('drag and drop moves a response to a rank, or into a tie', () => {
  const o = [[0], [1], [2]];
  assert.deepEqual(moveTo(o, 2, 0), [[2], [0], [1]]);
  assert.deepEqual(moveTo(o, 0, 1, true), [[1], [2, 0]]);
  assert.deepEqual(moveTo(o, 3, 9), [[0], [1], [2], [3]], 'an unranked card dropped at the end');
});
