import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { saveTinyModel, testBackend, tmpDir } from '../../helpers';
import { CharTokenizer } from '../../../src/engine/tokenizer';
import { grpoTrain, resumeGrpo } from '../../../src/engine/stages/grpo';
import { resumeRloo, rlooTrain } from '../../../src/engine/stages/rloo';
import { readSafetensors } from '../../../src/engine/safetensors';
import { RunDir } from '../../../src/data/run';
import { Rng } from '../../../src/engine/rng';
import { labelRecord } from '../../../src/engine/labeler/labeler';
import { trainRewardModel } from '../../../src/engine/stages/rm';

before(testBackend);

const tok = CharTokenizer.fromText('abcdefghijklmnopqrstuvwxyz ?.,:HA\n');
/** The reward: how many letters "e" the response has (a verifiable reward the policy can learn fast). */
const es = (_p: string, r: string) => (r.match(/e/g) ?? []).length;

async function fixture() {
  const root = tmpDir();
  await saveTinyModel(path.join(root, 'sft'), tok);
  fs.writeFileSync(path.join(root, 'p.ppo.jsonl'), ['say it', 'tell me', 'go on', 'why'].map((p) => JSON.stringify({ prompt: p })).join('\n') + '\n');
  return root;
}
const base = (root: string) => ({ prompts: path.join(root, 'p.ppo.jsonl'), policy: path.join(root, 'sft'), runsDir: path.join(root, 'runs') });
const small = { promptsPerStep: 2, numGenerations: 4, maxNewTokens: 8, lr: 1e-2 };
const bytesOf = (dir: string) => [...readSafetensors(path.join(dir, 'model.safetensors')).tensors.values()].map((t) => Buffer.from(t.data.buffer).toString('base64')).join();
const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

for (const algo of ['grpo', 'rloo'] as const) {
  const trainFn = (o: Parameters<typeof grpoTrain>[0] & Parameters<typeof rlooTrain>[0], hooks = {}) => (algo === 'grpo' ? grpoTrain(o, hooks) : rlooTrain(o, hooks));
  const cfgKey = algo;

  test(`${algo.toUpperCase()} learns a verifiable reward; logs its metrics; resume equals an uninterrupted run`, async () => {
    const root = await fixture();
    const r = await trainFn({ ...base(root), scorer: es, [cfgKey]: { ...small, iterations: 24 }, runId: 'a' });
    const m = new RunDir(path.join(root, 'runs', 'a')).readMetrics();
    const keys = algo === 'grpo' ? ['reward', 'reward_std', 'frac_reward_zero_std', 'kl', 'clip_ratio/region_mean', 'completions/mean_length', 'completions/clipped_ratio', 'entropy', 'loss', 'grad_norm'] : ['reward', 'kl', 'objective/rlhf_reward', 'clip_ratio', 'completions/mean_length', 'loss', 'grad_norm'];
    for (const k of keys) assert.ok(k in m[m.length - 1], k);
    // the cost: the plan counts every response at its limit; what ran generated no more than that
    const cost = new RunDir(path.join(root, 'runs', 'a')).read().cost!;
    assert.ok(cost.estimate!.flops > 0 && cost.actual!.seconds > 0 && cost.actual!.flops <= cost.estimate!.flops, JSON.stringify(cost));
    const first = avg(m.slice(0, 6).map((x) => x.reward)), last = avg(m.slice(-6).map((x) => x.reward));
    console.log(`# ${algo}: reward (letters e per response) ${first.toFixed(2)} -> ${last.toFixed(2)}`);
    assert.ok(last > first + 0.5, `${first} -> ${last}`);
    // resume: cancelled after 3 steps, resumed, equal to 6 uninterrupted steps
    const six = await trainFn({ ...base(root), scorer: es, [cfgKey]: { ...small, iterations: 6, checkpointInterval: 2 }, runId: 'six' });
    let polls = 0;
    await trainFn({ ...base(root), scorer: es, [cfgKey]: { ...small, iterations: 6, checkpointInterval: 2 }, runId: 'cut' }, { shouldStop: () => ++polls > 3 });
    const cut = new RunDir(path.join(root, 'runs', 'cut'));
    assert.equal(cut.read().status, 'cancelled');
    await (algo === 'grpo' ? resumeGrpo(cut.dir, {}, es) : resumeRloo(cut.dir, {}, es));
    assert.equal(bytesOf(path.join(cut.dir, 'checkpoints', 'final')), bytesOf(six.finalModel!));
    assert.ok(fs.existsSync(r.finalModel!));
  });
}

test('beta 0 loads no reference model; a group of one is refused; exactly one reward source', async () => {
  const root = await fixture();
  const logs: string[] = [];
  const r = await grpoTrain({ ...base(root), scorer: es, grpo: { ...small, iterations: 1, beta: 0 } }, { log: (l) => logs.push(l) });
  assert.ok(logs.some((l) => l.includes('beta 0 (no reference model)')));
  assert.ok(!('kl' in new RunDir(path.dirname(path.dirname(r.finalModel!))).readMetrics()[0]));
  await assert.rejects(grpoTrain({ ...base(root), scorer: es, grpo: { ...small, numGenerations: 1 } }), /at least 2/);
  await assert.rejects(rlooTrain({ ...base(root), rloo: small }), /exactly one source of rewards/);
});

test('a reward function file that throws, returns NaN or never answers stops the run with the file and the reason', async () => {
  const root = await fixture();
  const write = (name: string, body: string) => {
    fs.writeFileSync(path.join(root, name), body);
    return path.join(root, name);
  };
  const throws = write('throws.mjs', 'export default (prompt, response) => {\n  if (response.length >= 0) throw new Error("no score for this");\n  return 1;\n};\n');
  await assert.rejects(grpoTrain({ ...base(root), rewardFn: throws, grpo: { ...small, iterations: 1 } }), /the reward function .*throws\.mjs failed on a response: no score for this \(.*throws\.mjs:2/);
  const nan = write('nan.mjs', 'export default () => NaN;\n');
  await assert.rejects(grpoTrain({ ...base(root), rewardFn: nan, grpo: { ...small, iterations: 1 } }), /returned NaN, not a finite number/);
  const none = write('none.mjs', 'export const x = 1;\n');
  await assert.rejects(grpoTrain({ ...base(root), rewardFn: none, grpo: { ...small, iterations: 1 } }), /exports no function/);
  // a function that never resolves: the time limit (shortened here) ends the run, marked failed
  const hang = write('hang.mjs', 'export default () => new Promise(() => {});\n');
  const env = { ...process.env, RLHF_REWARD_FN_TIMEOUT_MS: '300' };
  const script = `const { grpoTrain } = require(${JSON.stringify(path.resolve(__dirname, '../../../src/engine/stages/grpo.ts'))}); require(${JSON.stringify(path.resolve(__dirname, '../../helpers.ts'))}).testBackend().then(() => grpoTrain({ prompts: process.argv[1], policy: process.argv[2], rewardFn: process.argv[3], runsDir: process.argv[4], runId: 'hang', grpo: { promptsPerStep: 1, numGenerations: 2, maxNewTokens: 4, iterations: 1 } })).catch((e) => { console.error(e.message); process.exit(3); });`;
  const p = spawnSync(process.execPath, ['--import', 'tsx', '-e', script, base(root).prompts, base(root).policy, hang, base(root).runsDir], { encoding: 'utf8', env, timeout: 60_000 });
  assert.equal(p.status, 3, p.stderr);
  assert.match(p.stderr, /hang\.mjs failed on a response: no answer within 0\.3 s/);
  assert.equal(new RunDir(path.join(root, 'runs', 'hang')).read().status, 'failed');
});

test('GRPO and RLOO write samples.jsonl (the spec\'s fields, at most 16 per step); a resumed run\'s file equals an uninterrupted run\'s', async () => {
  const root = await fixture();
  const read = (dir: string) => fs.readFileSync(path.join(dir, 'samples.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const o = { ...base(root), scorer: es, grpo: { promptsPerStep: 5, numGenerations: 4, maxNewTokens: 6, iterations: 4, checkpointInterval: 2 } };
  await grpoTrain({ ...o, runId: 'whole' });
  const whole = read(path.join(root, 'runs', 'whole'));
  assert.equal(whole.length, 4 * 16, '20 responses a step, 16 kept');
  for (const k of ['step', 'prompt', 'response', 'score', 'advantage', 'kl']) assert.ok(k in whole[0], k);
  assert.deepEqual([...new Set(whole.map((x) => x.step))], [1, 2, 3, 4]);
  let polls = 0;
  await grpoTrain({ ...o, runId: 'cut' }, { shouldStop: () => ++polls > 3 });
  await resumeGrpo(path.join(root, 'runs', 'cut'), {}, es);
  assert.deepEqual(read(path.join(root, 'runs', 'cut')), whole);
  await rlooTrain({ ...base(root), scorer: es, rloo: { promptsPerStep: 2, numGenerations: 2, maxNewTokens: 6, iterations: 2 }, runId: 'rloo' });
  const rl = read(path.join(root, 'runs', 'rloo'));
  assert.equal(rl.length, 2 * 4);
  for (const k of ['step', 'prompt', 'response', 'score', 'advantage', 'kl']) assert.ok(k in rl[0], k);
});

test('GRPO and RLOO with the reference and the reward model on a second thread give the numbers and checkpoints of one thread (full, and LoRA with a LoRA reward model)', async () => {
  const root = await fixture();
  const rng = new Rng(3);
  fs.writeFileSync(path.join(root, 'd.rm.jsonl'), Array.from({ length: 8 }, (_, i) => JSON.stringify(labelRecord(`p${i}`, ['it was good', 'it was bad', 'so so'], rng))).join('\n') + '\n');
  const rm = await trainRewardModel({ data: path.join(root, 'd.rm.jsonl'), model: path.join(root, 'sft'), runsDir: path.join(root, 'rm-runs'), runId: 'rm', train: { steps: 2, batchSize: 4, threads: 1 } });
  // the LoRA policies are scored by a reward model saved as an adapter (its base and adapter both go to the thread)
  const rmLora = await trainRewardModel({ data: path.join(root, 'd.rm.jsonl'), model: path.join(root, 'sft'), lora: { r: 4 }, runsDir: path.join(root, 'rm-runs'), runId: 'rm-lora', train: { steps: 3, batchSize: 4, lr: 1e-2, threads: 1 } });
  const timing = new Set(['time', 'tokens_per_second', 'generation_seconds', 'iteration_seconds']);
  const figures = (id: string) => new RunDir(path.join(root, 'runs', id)).readMetrics().map((m) => Object.entries(m).filter(([k]) => !timing.has(k)));
  const weights = (id: string) => {
    const dir = path.join(root, 'runs', id, 'checkpoints', 'final');
    const file = ['model.safetensors', 'adapter_model.safetensors'].map((f) => path.join(dir, f)).find((f) => fs.existsSync(f))!;
    return [...readSafetensors(file).tensors.values()].map((t) => Buffer.from(t.data.buffer).toString('base64')).join();
  };
  for (const algo of ['grpo', 'rloo'] as const) {
    for (const lora of [undefined, { r: 4 }]) {
      const run = (threads: number) => {
        const o = { ...base(root), rewardModel: (lora ? rmLora : rm).finalModel!, lora, threads, runId: `${algo}-${lora ? 'lora' : 'full'}-${threads}`, [algo]: { ...small, iterations: 3 } };
        return algo === 'grpo' ? grpoTrain(o) : rlooTrain(o);
      };
      await run(1);
      await run(2);
      const tag = `${algo}-${lora ? 'lora' : 'full'}`;
      const one = figures(`${tag}-1`);
      assert.equal(one.length, 3);
      assert.ok(one.slice(1).every((m) => m.some(([k, v]) => k === 'kl' && (v as number) !== 0)), `${tag}: the reference is used (after the first update)`);
      assert.deepEqual(figures(`${tag}-2`), one, `${tag}: every logged figure`);
      assert.equal(weights(`${tag}-2`), weights(`${tag}-1`), `${tag}: the final weights, to the bit`);
    }
  }
});
