import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { saveTinyModel, testBackend, tmpDir } from '../../helpers';
import { CharTokenizer } from '../../../src/engine/tokenizer';
import { dpo, resumeDpo } from '../../../src/engine/stages/dpo';
import { readSafetensors } from '../../../src/engine/safetensors';
import { RunDir } from '../../../src/data/run';
import { Rng } from '../../../src/engine/rng';

before(testBackend);

const tok = CharTokenizer.fromText('abcdefghijklmnopqrstuvwxyz ?.,:HA\n');

/** A tiny policy and K = 4 rankings that prefer "good" over "fine" over "dull" over "bad". */
async function fixture() {
  const root = tmpDir();
  await saveTinyModel(path.join(root, 'sft'), tok);
  const rng = new Rng(3);
  const words = ['good', 'fine', 'dull', 'bad'];
  const lines = Array.from({ length: 40 }, (_, i) => {
    const order = [0, 1, 2, 3].sort(() => rng.next() - 0.5);
    return JSON.stringify({ prompt: `say ${i % 7}`, responses: order.map((w) => `it was ${words[w]}`), ranks: order.map((w) => w + 1) });
  });
  fs.writeFileSync(path.join(root, 'prefs.rm.jsonl'), lines.join('\n') + '\n');
  return root;
}

const bytesOf = (dir: string) => [...readSafetensors(path.join(dir, 'model.safetensors')).tensors.values()].map((t) => Buffer.from(t.data.buffer).toString('base64')).join();

test('DPO on K-way rankings (Plackett-Luce): the implicit reward learns the ranking; TRL metric names; the reference is stored in the run', async () => {
  const root = await fixture();
  const r = await dpo({ data: path.join(root, 'prefs.rm.jsonl'), model: path.join(root, 'sft'), dpo: { beta: 0.5 }, train: { steps: 30, batchSize: 4, lr: 3e-3, evalInterval: 10 }, runsDir: path.join(root, 'runs'), runId: 'dpo' });
  const m = new RunDir(path.join(root, 'runs', 'dpo')).readMetrics();
  for (const k of ['loss', 'rewards/chosen', 'rewards/rejected', 'rewards/accuracies', 'rewards/margins', 'logps/chosen', 'logps/rejected', 'learning_rate', 'grad_norm', 'eval/loss', 'eval/rewards/accuracies']) assert.ok(k in m[m.length - 1], k);
  const first = m.slice(0, 3).reduce((s, x) => s + x.loss, 0) / 3, last = m.slice(-3).reduce((s, x) => s + x.loss, 0) / 3;
  console.log(`# DPO loss ${first.toFixed(3)} -> ${last.toFixed(3)}; eval reward accuracy ${m.at(-1)!['eval/rewards/accuracies'].toFixed(2)}, margin ${m.at(-1)!['eval/rewards/margins'].toFixed(3)}`);
  assert.ok(last < first - 0.2, `loss ${first} -> ${last}`);
  assert.ok(m.at(-1)!['eval/rewards/accuracies'] > 0.8);
  assert.ok(m[0]['rewards/margins'] < m.at(-1)!['rewards/margins']);
  const ref = JSON.parse(fs.readFileSync(path.join(root, 'runs', 'dpo', 'reference_logps.json'), 'utf8'));
  assert.equal(ref.train.length, 36, 'one entry per training record');
  assert.ok(ref.train.every((x: number[] | null) => x === null || x.length === 4));
  assert.ok(fs.existsSync(path.join(r.finalModel!, 'model.safetensors')));
  // samples.jsonl: at each evaluation, held-out responses with their implicit rewards, which learned the ranking
  const samples = fs.readFileSync(path.join(root, 'runs', 'dpo', 'samples.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual([...new Set(samples.map((x) => x.step))], [10, 20, 30]);
  const atEnd = samples.filter((x) => x.step === 30);
  assert.equal(atEnd.length, 16);
  for (const x of atEnd) assert.deepEqual(Object.keys(x), ['step', 'prompt', 'response', 'implicit_reward']);
  const mean = (w: string) => { const v = atEnd.filter((x) => x.response.endsWith(w)).map((x) => x.implicit_reward); return v.reduce((a, b) => a + b, 0) / v.length; };
  assert.ok(mean('good') > mean('bad'), `implicit reward of "good" ${mean('good')} above "bad" ${mean('bad')}`);
});

test('DPO computes the reference only for the training records its steps will draw (and every held-out one)', async () => {
  const root = await fixture();
  await dpo({ data: path.join(root, 'prefs.rm.jsonl'), model: path.join(root, 'sft'), train: { steps: 2, batchSize: 4, evalInterval: 2 }, runsDir: path.join(root, 'runs'), runId: 'dpo' });
  const ref = JSON.parse(fs.readFileSync(path.join(root, 'runs', 'dpo', 'reference_logps.json'), 'utf8'));
  assert.equal(ref.train.filter((x: unknown) => x !== null).length, 8, '2 steps of 4 records');
  assert.equal(ref.eval.length, 4);
});

test('DPO resume equals an uninterrupted run, reading the stored reference (the starting model may be gone)', async () => {
  const root = await fixture();
  const o = { data: path.join(root, 'prefs.rm.jsonl'), model: path.join(root, 'sft'), train: { steps: 6, batchSize: 4, lr: 3e-3, checkpointInterval: 2, evalInterval: 3 } };
  const a = await dpo({ ...o, runsDir: path.join(root, 'a'), runId: 'dpo' });
  let polls = 0;
  await dpo({ ...o, runsDir: path.join(root, 'b'), runId: 'dpo' }, { shouldStop: () => ++polls > 3 });
  const b = new RunDir(path.join(root, 'b', 'dpo'));
  assert.equal(b.read().status, 'cancelled');
  fs.rmSync(path.join(root, 'sft'), { recursive: true }); // the reference is read from the run, not recomputed
  await resumeDpo(b.dir);
  assert.equal(b.read().status, 'completed');
  assert.equal(bytesOf(path.join(b.dir, 'checkpoints', 'final')), bytesOf(a.finalModel!));
  assert.deepEqual(b.readMetrics().map((x) => x.loss), new RunDir(path.join(root, 'a', 'dpo')).readMetrics().map((x) => x.loss));
});

test('DPO with --kway pairs, IPO and label smoothing runs; bad settings and data are refused clearly', async () => {
  const root = await fixture();
  const base = { data: path.join(root, 'prefs.rm.jsonl'), model: path.join(root, 'sft'), train: { steps: 2, batchSize: 2 }, runsDir: path.join(root, 'runs') };
  for (const d of [{ kway: 'pairs' as const }, { loss: 'ipo' as const }, { labelSmoothing: 0.1 }]) {
    const r = await dpo({ ...base, dpo: d });
    assert.equal(r.run.status, 'completed', JSON.stringify(d));
  }
  await assert.rejects(dpo({ ...base, dpo: { beta: 0 } }), /--beta must be a positive number/);
  // a record with everything tied and a pair of identical responses are skipped, said in the log
  const mixed = path.join(root, 'mixed.rm.jsonl');
  fs.writeFileSync(mixed, [{ prompt: 'x', responses: ['a', 'b', 'c'], ranks: [1, 1, 1] }, { prompt: 'y', chosen: 'same', rejected: 'same' }, { prompt: 'z', chosen: 'it was good', rejected: 'it was bad' }].map((x) => JSON.stringify(x)).join('\n') + '\n');
  const logs: string[] = [];
  const r = await dpo({ ...base, data: mixed }, { log: (l) => logs.push(l) });
  assert.equal(r.run.status, 'completed');
  assert.ok(logs.some((l) => /2 record\(s\) skipped: everything tied, flagged not_rankable, or identical responses/.test(l)), logs.join('\n'));
  // nothing left to learn from: refused before a run folder exists
  const tied = path.join(root, 'tied.rm.jsonl');
  fs.writeFileSync(tied, JSON.stringify({ prompt: 'x', responses: ['a', 'b', 'c'], ranks: [1, 1, 1] }) + '\n');
  await assert.rejects(dpo({ ...base, data: tied, runId: 'never' }), /no preference to learn from \(every record tied/);
  assert.ok(!fs.existsSync(path.join(base.runsDir, 'never')));
});

test('DPO split across two threads matches one thread (Plackett-Luce, pairs with IPO, LoRA): reference, losses, metrics, evaluation and weights', async () => {
  const root = await fixture();
  const o = { data: path.join(root, 'prefs.rm.jsonl'), model: path.join(root, 'sft'), runsDir: root };
  // a LoRA run's final checkpoint is its adapter
  const weights = (dir: string) => {
    const file = ['model.safetensors', 'adapter_model.safetensors'].map((f) => path.join(dir, f)).find((f) => fs.existsSync(f))!;
    return [...readSafetensors(file).tensors.values()].flatMap((t) => [...t.data]);
  };
  // 3 rankings a step: parts of 2 and 1, weighed 2/3 and 1/3 (Plackett-Luce), or by their pairs' counts
  for (const [tag, d, lora] of [['pl', {}, undefined], ['ipo', { kway: 'pairs' as const, loss: 'ipo' as const }, undefined], ['lora', {}, { r: 4 }]] as const) {
    const train = { steps: 3, batchSize: 3, lr: 3e-3, evalInterval: 3 };
    const one = await dpo({ ...o, dpo: d, lora, runId: `${tag}1`, train: { ...train, threads: 1 } });
    const two = await dpo({ ...o, dpo: d, lora, runId: `${tag}2`, train: { ...train, threads: 2 } });
    assert.equal((new RunDir(path.join(root, `${tag}2`)).read().config.train as { threads: number }).threads, 2, 'the thread count is recorded for a resume');
    // the reference's log-probabilities: every other chunk of records computed on the second thread
    const ref = (id: string) => JSON.parse(fs.readFileSync(path.join(root, id, 'reference_logps.json'), 'utf8')) as { train: (number[] | null)[]; eval: number[][] };
    const r1 = ref(`${tag}1`), r2 = ref(`${tag}2`);
    const flat = (r: typeof r1) => [...r.train.flatMap((x) => x ?? []), ...r.eval.flat()];
    assert.ok(flat(r1).length > 24, 'more than one chunk of 8 records');
    flat(r1).forEach((x, i) => assert.ok(Math.abs(x - flat(r2)[i]) < 1e-4, `${tag}: reference ${i}: ${x} vs ${flat(r2)[i]}`));
    const m1 = new RunDir(path.join(root, `${tag}1`)).readMetrics(), m2 = new RunDir(path.join(root, `${tag}2`)).readMetrics();
    assert.equal(m1.length, 3);
    assert.ok('eval/loss' in m1[2] && 'eval/loss' in m2[2], 'the held-out split is evaluated (on both threads in the second run)');
    m1.forEach((m, i) => {
      for (const k of ['loss', 'rewards/margins', 'logps/chosen', 'grad_norm', 'eval/loss']) {
        if (!(k in m)) continue;
        assert.ok(Math.abs(m[k] - m2[i][k]) < 1e-5 * Math.max(1, Math.abs(m[k])), `${tag} step ${i + 1} ${k}: ${m[k]} vs ${m2[i][k]}`);
      }
      assert.equal(m['rewards/accuracies'], m2[i]['rewards/accuracies']);
    });
    const w1 = weights(one.finalModel!), w2 = weights(two.finalModel!);
    assert.equal(w1.length, w2.length);
    let worst = 0;
    w1.forEach((x, i) => (worst = Math.max(worst, Math.abs(x - w2[i]))));
    assert.ok(worst < 1e-5, `${tag}: weights differ by ${worst}`);
  }
});
