import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { FIXTURES, tmpDir } from '../helpers';
import { Vote, bradleyTerry, firstOnLeft, pairResults, ratings, schedule, summarize, voteOf, voteRecord, wilson } from '../../src/data/evaluation';
import { readDataset } from '../../src/data/reader';

// made by test/fixtures/evaluation/make_reference.py (scipy's binomtest and BFGS), committed
const REFERENCE = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'evaluation', 'reference.json'), 'utf8')) as Record<string, {
  votes: Vote[];
  pairs: { a: string; b: string; half: [number, number, number]; exclude: [number, number, number] | null }[];
  ratings: Record<string, number>;
}>;

test('win rates with 95% Wilson intervals equal the reference (ties as halves, and ties left out), all-ties and one-sided included', () => {
  for (const [name, c] of Object.entries(REFERENCE)) {
    for (const rule of ['half', 'exclude'] as const) {
      const got = pairResults(c.votes, rule);
      assert.equal(got.length, c.pairs.length, name);
      for (const want of c.pairs) {
        const r = got.find((x) => x.a === want.a && x.b === want.b)!;
        const w = want[rule];
        if (w === null) {
          assert.equal(r.n, 0, `${name}: no decided vote`);
          assert.ok(Number.isNaN(r.win_rate));
          continue;
        }
        for (const [k, v] of [['win_rate', w[0]], ['low', w[1]], ['high', w[2]]] as const) assert.ok(Math.abs(r[k] - v) < 1e-9, `${name} ${rule} ${r.a}-${r.b} ${k}: ${r[k]} vs ${v}`);
      }
    }
  }
});

test('Bradley-Terry ratings equal the reference maximum-likelihood fit (BFGS in scipy) for two, three and four models', () => {
  for (const [name, c] of Object.entries(REFERENCE)) {
    const got = bradleyTerry(c.votes);
    for (const [m, r] of Object.entries(c.ratings)) assert.ok(Math.abs(got.get(m)! - r) < 1e-4, `${name} ${m}: ${got.get(m)} vs ${r}`);
  }
});

test('bootstrap intervals hold the estimate, repeat with the seed, and narrow with more votes', () => {
  const c = REFERENCE['three models'];
  const a = ratings(c.votes, { rounds: 400, seed: 7 }), b = ratings(c.votes, { rounds: 400, seed: 7 });
  assert.deepEqual(a, b);
  for (const r of a) assert.ok(r.low <= r.rating && r.rating <= r.high, JSON.stringify(r));
  const more = ratings([...c.votes, ...c.votes, ...c.votes, ...c.votes], { rounds: 400, seed: 7 });
  for (const r of more) {
    const before = a.find((x) => x.model === r.model)!;
    assert.ok(r.high - r.low < before.high - before.low, `${r.model}: ${r.high - r.low} < ${before.high - before.low}`);
  }
  assert.equal(summarize(c.votes).ratings?.length, 3);
  assert.equal(summarize(REFERENCE['two models'].votes).ratings, undefined, 'two models: the win rate says it all');
});

test('Wilson: the textbook cases', () => {
  const w = wilson(0, 10);
  assert.equal(w.low, 0);
  assert.ok(Math.abs(w.high - 0.2775327998628899) < 1e-12);
  assert.deepEqual(wilson(0, 0), { p: NaN, low: 0, high: 1 });
});

test('sides are random per item: over 1,000 items each model is on the left half the time, and each order comes back from its recorded seed', () => {
  const s = schedule(['models/sft', 'runs/ppo/final'], 1000, 20261130);
  const left = s.filter((x) => x.left === 'models/sft').length;
  // binomial(1000, 1/2): sd 15.8; 3.5 sd either side
  assert.ok(Math.abs(left - 500) < 56, `${left} of 1000 on the left`);
  for (const x of s) assert.equal(firstOnLeft(x.seed) ? 'models/sft' : 'runs/ppo/final', x.left, 'the recorded seed gives the order');
  assert.deepEqual(schedule(['models/sft', 'runs/ppo/final'], 1000, 20261130), s, 'the same session seed, the same schedule');
  assert.notDeepEqual(schedule(['models/sft', 'runs/ppo/final'], 1000, 1), s);
  // three models: every pair meets equally often, every model as often as every other, left half the time
  const t = schedule(['a', 'b', 'c'], 999, 3);
  const meets = new Map<string, number>();
  for (const x of t) meets.set([x.left, x.right].sort().join(), (meets.get([x.left, x.right].sort().join()) ?? 0) + 1);
  assert.deepEqual([...meets.values()], [333, 333, 333]);
  for (const m of ['a', 'b', 'c']) {
    const n = t.filter((x) => x.left === m || x.right === m).length, l = t.filter((x) => x.left === m).length;
    assert.equal(n, 666);
    assert.ok(Math.abs(l - 333) < 3.5 * Math.sqrt(666 / 4), `${m}: ${l} of ${n} on the left`);
  }
  assert.throws(() => schedule(['a'], 3, 1), /at least two models/);
  assert.throws(() => schedule(['a', 'a'], 3, 1), /twice/);
});

test('a vote is an RM record a trainer reads (a preference as chosen/rejected; a tie or both bad as a tied pair) and comes back as the same vote', () => {
  const base = { prompt: 'Tell me about the ferry.', left: { model: 'runs/ppo/final', response: 'A lovely ride.' }, right: { model: 'models/sft', response: 'A ride.' }, annotator: 'ann', timeMs: 900, seed: 42, item: 3 };
  const recs = (['left', 'right', 'tie', 'both_bad'] as const).map((verdict) => ({ verdict, rec: { ...voteRecord({ ...base, verdict }), evaluation: 'e1' } as Record<string, unknown> }));
  assert.deepEqual(recs[0].rec, { prompt: base.prompt, chosen: 'A lovely ride.', rejected: 'A ride.', models: { chosen: 'runs/ppo/final', rejected: 'models/sft' }, annotator: 'ann', time_ms: 900, order: ['runs/ppo/final', 'models/sft'], seed: 42, item: 3, evaluation: 'e1' });
  assert.deepEqual(recs[3].rec.flags, ['not_rankable']);
  const votes = recs.map((r) => voteOf(r.rec)!);
  assert.deepEqual(votes.map((v) => [v.a, v.b, v.score, v.bothBad ?? false]), [
    ['models/sft', 'runs/ppo/final', 0, false],
    ['models/sft', 'runs/ppo/final', 1, false],
    ['models/sft', 'runs/ppo/final', 0.5, false],
    ['models/sft', 'runs/ppo/final', 0.5, true],
  ]);
  const file = path.join(tmpDir(), 'votes.rm.jsonl');
  fs.writeFileSync(file, recs.map((r) => JSON.stringify(r.rec)).join('\n') + '\n');
  const read = readDataset(file, { stage: 'rm' });
  assert.equal(read.problems, 0);
  assert.equal(read.records, 4);
  assert.equal(voteOf({ prompt: 'p', chosen: 'a', rejected: 'b' }), undefined, 'a plain preference is not a vote of an evaluation');
  const r = pairResults(votes)[0];
  assert.deepEqual([r.wins_a, r.wins_b, r.ties, r.both_bad, r.n], [1, 1, 1, 1, 4]);
});

test('people and judges are kept apart: the headline is the people\'s verdict, each judge has its own and its agreement with them', async () => {
  const { summarizeByVoter } = await import('../../src/data/evaluation');
  const v = (annotator: string, item: number, score: 0 | 0.5 | 1, evaluation = 'e'): Vote => ({ a: 'ppo', b: 'sft', score, annotator, item, evaluation });
  const votes = [v('ann', 0, 1), v('ann', 1, 1), v('ann', 2, 0), v('bob', 3, 0.5), v('judge:gold', 0, 1), v('judge:gold', 1, 0), v('judge:gold', 2, 0), v('judge:gold', 3, 0.5), v('judge:gold', 0, 0, 'other')];
  const s = summarizeByVoter(votes);
  assert.equal(s.votes, 4, 'the people\'s votes');
  assert.deepEqual([s.pairs[0].wins_a, s.pairs[0].wins_b, s.pairs[0].ties], [2, 1, 1]);
  const j = s.judges!['judge:gold'];
  assert.equal(j.votes, 5);
  assert.deepEqual(j.agreement, { items: 4, agree: 0.75 }, 'items 0, 2, 3 agree; item 1 not; the other evaluation\'s item 0 is another item');
  assert.equal(summarizeByVoter(votes.filter((x) => x.annotator === 'judge:gold')).judges, undefined, 'judges alone: their votes are the headline');
});
