import { test } from 'node:test';
import assert from 'node:assert/strict';
import { agreement, kendallTauB, krippendorffAlpha } from '../../src/data/agreement';

const close = (a: number, b: number, eps = 1e-3) => assert.ok(Math.abs(a - b) < eps, `${a} vs ${b}`);

test('Kendall tau-b: the scipy.stats.kendalltau documentation example, worked by hand', () => {
  // x = [12, 2, 1, 12, 2], y = [1, 4, 7, 1, 0]: 2 concordant, 6 discordant, 1 pair tied in x only,
  // 1 tied in both: (2 - 6) / sqrt((8 + 1) * (8 + 0)) = -0.4714045
  close(kendallTauB([12, 2, 1, 12, 2], [1, 4, 7, 1, 0]), -0.47140452079103173, 1e-12);
  assert.equal(kendallTauB([1, 2, 3], [1, 2, 3]), 1);
  assert.equal(kendallTauB([1, 2, 3], [3, 2, 1]), -1);
});

test("Krippendorff's alpha: the worked example of Krippendorff (2011), 4 coders, 12 units, missing values", () => {
  // "Computing Krippendorff's Alpha-Reliability": nominal 0.743, ordinal 0.815, interval 0.849
  const _ = NaN;
  const coders = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, _, _, _],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, _, 3],
    [_, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, _],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, _],
  ];
  const units = coders[0].map((_, u) => coders.map((c) => c[u]).filter((v) => !Number.isNaN(v)));
  close(krippendorffAlpha(units, 'nominal'), 0.743);
  close(krippendorffAlpha(units, 'ordinal'), 0.815);
  close(krippendorffAlpha(units, 'interval'), 0.849);
});

test('agreement across annotators who ranked the same prompt and responses', () => {
  const same = { prompt: 'p', responses: ['a', 'b', 'c'] };
  const report = agreement([
    { ...same, ranks: [1, 2, 3], annotator: 'ann' },
    { ...same, responses: ['c', 'a', 'b'], ranks: [3, 1, 2], annotator: 'bob' }, // the same order, listed differently
    { ...same, ranks: [2, 1, 3], annotator: 'cy' },
    { prompt: 'q', responses: ['x', 'y'], ranks: [1, 2], annotator: 'ann' }, // ranked once: not counted
  ]);
  assert.equal(report.items, 1);
  assert.deepEqual(report.annotators, ['ann', 'bob', 'cy']);
  // ann/bob agree on 3 of 3 pairs; ann/cy and bob/cy on 2 of 3: 7 of 9
  close(report.pairwise_agreement, 7 / 9, 1e-12);
  assert.deepEqual(report.kendall_tau_b.map((t) => [t.a, t.b, Number(t.tau_b.toFixed(4))]), [['ann', 'bob', 1], ['ann', 'cy', 0.3333], ['bob', 'cy', 0.3333]]);
  assert.ok(report.krippendorff_alpha_ordinal > 0 && report.krippendorff_alpha_ordinal < 1);
});
