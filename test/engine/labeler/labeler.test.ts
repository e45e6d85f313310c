import { test } from 'node:test';
import assert from 'node:assert/strict';
import { goldScore } from '../../../src/engine/labeler/gold';
import { labelRecord, ranksFromScores } from '../../../src/engine/labeler/labeler';
import { Rng } from '../../../src/engine/rng';
import { toRanking } from '../../../src/data/rm';

test('gold score is the AFINN sum', () => {
  assert.equal(goldScore('The food was wonderful.'), 4);
  assert.equal(goldScore('The bed was dirty, the coffee awful.'), -5);
  assert.equal(goldScore('The bed was.'), 0);
});

test('ranks: best first, equal or near scores tie', () => {
  assert.deepEqual(ranksFromScores([1, 5, 3], 0), [3, 1, 2]);
  assert.deepEqual(ranksFromScores([2, 2, -1], 0), [1, 1, 2]);
  assert.deepEqual(ranksFromScores([2, 1.8, -1], 0.5), [1, 1, 2]);
});

test('the simulated labeler writes valid K-way records; noise sometimes flips close pairs', () => {
  const responses = ['It was wonderful.', 'It was bad.', 'It was good.', 'It was good and nice.'];
  const clean = labelRecord('Tell me.', responses, new Rng(1), { noise: 0, tieWithin: 0, annotator: 't' });
  assert.deepEqual(clean.ranks, [2, 4, 3, 1]);
  const parsed = toRanking(clean, 'f', 1);
  assert.ok('responses' in parsed);
  let flips = 0;
  const rng = new Rng(2);
  for (let i = 0; i < 200; i++) {
    const r = labelRecord('Tell me.', ['It was good.', 'It was nice and fresh.'], rng, { noise: 1, tieWithin: 0, annotator: 't' }).ranks;
    if (r[0] < r[1]) flips++;
  }
  assert.ok(flips > 20 && flips < 100, `${flips} of 200 flipped`);
});
