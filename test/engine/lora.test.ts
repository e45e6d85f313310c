import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import * as tf from '@tensorflow/tfjs-core';
import { ROOT, saveTinyChatLlama, saveTinyModel, testBackend, tmpDir } from '../helpers';
import { CharTokenizer } from '../../src/engine/tokenizer';
import { loadModel, readModelDir } from '../../src/engine/checkpoint';
import { readSafetensors } from '../../src/engine/safetensors';
import { sft, resumeSft } from '../../src/engine/stages/sft';
import { trainRewardModel } from '../../src/engine/stages/rm';
import { ppoTrain } from '../../src/engine/stages/ppo';
import { grpoTrain, resumeGrpo } from '../../src/engine/stages/grpo';
import { resumeRloo, rlooTrain } from '../../src/engine/stages/rloo';
import { RunDir } from '../../src/data/run';
import { Rng } from '../../src/engine/rng';
import { labelRecord } from '../../src/engine/labeler/labeler';

before(testBackend);

const tok = CharTokenizer.fromText('abcdefghijklmnopqrstuvwxyz ?.,:HA\n');

/** Demonstrations of a tiny task: "say a" -> "aa." (or, for the second task, "a a a!"). */
function sftData(root: string, task: 1 | 2 = 1): string {
  const file = path.join(root, `task${task}.sft.jsonl`);
  const resp = (c: string) => (task === 1 ? `${c}${c}.` : `${c} ${c} ${c}!`);
  const lines = Array.from({ length: 40 }, (_, i) => JSON.stringify({ prompt: `say ${'abc'[i % 3]}`, response: resp('abc'[i % 3]) }));
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

/**
 * A base model that has learned something (embeddings and head that mean something, as a real
 * model's do): full SFT of a random model on task 1. LoRA then learns task 2 on it.
 */
async function trainedBase(root: string, arch: 'gpt2' | 'llama'): Promise<string> {
  const init = path.join(root, 'init');
  if (arch === 'gpt2') await saveTinyModel(init, tok, 3);
  else await saveTinyChatLlama(init, 3);
  const r = await sft({ data: sftData(root, 1), model: init, runsDir: path.join(root, 'base-runs'), runId: 'base', train: { steps: 40, batchSize: 8, lr: 1e-2, warmupSteps: 2, evalInterval: 0 } });
  return r.finalModel!;
}

const evalLosses = (dir: string) => new RunDir(dir).readMetrics().filter((x) => 'eval/loss' in x).map((x) => x['eval/loss']);

async function logitsOf(dir: string, ids: number[]): Promise<Float32Array> {
  const { model } = loadModel(dir, false);
  const l = tf.tidy(() => model.logits(tf.tensor2d([ids], [1, ids.length], 'int32')));
  const out = (await l.data()) as Float32Array;
  l.dispose();
  model.dispose();
  return out;
}

/** The held-out loss of a model on a dataset, as SFT's evaluation computes it (a 1-step run at lr 0). */
async function heldOutLoss(model: string, data: string): Promise<number> {
  const root = tmpDir();
  await sft({ data, model, runsDir: root, runId: 'probe', train: { steps: 1, batchSize: 2, lr: 0, minLr: 0, warmupSteps: 0, evalInterval: 1 } });
  return evalLosses(path.join(root, 'probe'))[0];
}

const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

for (const arch of ['gpt2', 'llama'] as const) {
  test(`LoRA SFT of a ${arch === 'gpt2' ? 'GPT-2' : 'Llama'} model: lowers the held-out loss, leaves the base byte-equal, saves a PEFT adapter that loads back, merges to the same logits`, async () => {
    const root = tmpDir();
    const base = await trainedBase(root, arch);
    const baseBytes = fs.readFileSync(path.join(base, 'model.safetensors'));
    const r = await sft({ data: sftData(root, 2), model: base, runsDir: path.join(root, 'runs'), runId: 'sft', lora: { r: 4 }, train: { steps: 30, batchSize: 8, lr: 2e-2, warmupSteps: 2, evalInterval: 5 } });
    assert.equal(r.run.status, 'completed');
    const losses = evalLosses(path.join(root, 'runs', 'sft'));
    const before0 = await heldOutLoss(base, sftData(root, 2));
    assert.ok(losses[losses.length - 1] < 0.6 * before0, `held-out loss of task 2: ${before0} before, ${losses[losses.length - 1]} after`);
    assert.ok(fs.readFileSync(path.join(base, 'model.safetensors')).equals(baseBytes), 'the base weights are byte-equal after training');

    // PEFT's layout
    const out = r.finalModel!;
    assert.ok(!fs.existsSync(path.join(out, 'model.safetensors')) && !fs.existsSync(path.join(out, 'config.json')), 'an adapter folder, not a whole model');
    const ac = JSON.parse(fs.readFileSync(path.join(out, 'adapter_config.json'), 'utf8'));
    assert.equal(ac.peft_type, 'LORA');
    assert.equal(ac.task_type, 'CAUSAL_LM');
    assert.equal(ac.r, 4);
    assert.equal(ac.lora_alpha, 8);
    assert.equal(ac.base_model_name_or_path, path.resolve(base));
    assert.equal(ac.fan_in_fan_out, arch === 'gpt2', "GPT-2's Conv1D is fan_in_fan_out");
    const st = readSafetensors(path.join(out, 'adapter_model.safetensors')).tensors;
    if (arch === 'gpt2') {
      assert.deepEqual(st.get('base_model.model.transformer.h.0.attn.c_attn.lora_A.weight')!.shape, [4, 16], 'lora_A [r, in]');
      assert.deepEqual(st.get('base_model.model.transformer.h.0.attn.c_attn.lora_B.weight')!.shape, [48, 4], 'lora_B [out, r]');
      assert.ok(st.has('base_model.model.transformer.h.0.mlp.c_proj.lora_A.weight'));
    } else {
      assert.deepEqual(st.get('base_model.model.model.layers.1.self_attn.k_proj.lora_A.weight')!.shape, [4, 16]);
      assert.deepEqual(st.get('base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight')!.shape, [8, 4], 'k_proj out = kv heads x head_dim');
      assert.deepEqual(st.get('base_model.model.model.layers.0.mlp.down_proj.lora_A.weight')!.shape, [4, 32]);
    }
    assert.ok([...st.values()].every((t) => t.data.some((x) => x !== 0)), 'every adapter tensor trained');
    const loaded = readModelDir(out);
    assert.ok(loaded.adapter && loaded.adapter.base === path.resolve(base));
    // the adapter folder loads back as the model that was trained: its held-out loss, to float precision
    const reloaded = await heldOutLoss(out, sftData(root, 2));
    assert.ok(Math.abs(reloaded - losses[losses.length - 1]) < 1e-5, `held-out loss ${losses[losses.length - 1]} in training, ${reloaded} from the saved adapter`);

    // logits: the adapter as loaded equals the model that was trained; the merged model equals it too
    const ids = arch === 'gpt2' ? tok.encode('Human: say a\n\nAssistant: ') : [5, 60, 71, 200, 33, 9, 261, 262];
    const adapted = await logitsOf(out, ids);
    const plain = await logitsOf(base, ids);
    assert.ok(maxDiff(adapted, plain) > 1e-3, 'the adapter changes the logits');
    const merged = path.join(root, 'merged');
    const cli = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'cli.js'), 'merge-lora', '--adapter', out, '--out', merged, '--backend', 'wasm', '--dtype', 'f32'], { encoding: 'utf8' });
    assert.equal(cli.status, 0, cli.stderr);
    assert.ok(maxDiff(await logitsOf(merged, ids), adapted) < 1e-4, 'merged equals adapter-on');
    assert.ok(fs.existsSync(path.join(merged, 'config.json')));
  });
}

test('LoRA SFT: a resumed run equals an uninterrupted one (adapter and optimizer state)', async () => {
  const root = tmpDir();
  await saveTinyChatLlama(path.join(root, 'base'), 4);
  const o = { data: sftData(root), model: path.join(root, 'base'), lora: { r: 2, alpha: 4, dropout: 0.1 }, train: { steps: 6, batchSize: 4, checkpointInterval: 2, evalInterval: 3 } };
  const a = await sft({ ...o, runsDir: path.join(root, 'a'), runId: 'sft' });
  let polls = 0;
  await sft({ ...o, runsDir: path.join(root, 'b'), runId: 'sft' }, { shouldStop: () => ++polls > 3 });
  const b = path.join(root, 'b', 'sft');
  assert.equal(new RunDir(b).read().status, 'cancelled');
  await resumeSft(b);
  const fa = fs.readFileSync(path.join(a.finalModel!, 'adapter_model.safetensors'));
  const fb = fs.readFileSync(path.join(b, 'checkpoints', 'final', 'adapter_model.safetensors'));
  assert.ok(fa.equals(fb), 'adapter bytes equal');
  const ta = readSafetensors(path.join(root, 'a', 'sft', 'checkpoints', 'step-000006', 'optimizer.safetensors')).tensors;
  assert.ok([...ta.keys()].every((k) => k.includes('lora_')), 'optimizer state only for the adapter');
});

test('an adapter for another base model, and a missing base, are refused in one line', async () => {
  const root = tmpDir();
  await saveTinyChatLlama(path.join(root, 'base'), 5);
  const r = await sft({ data: sftData(root), model: path.join(root, 'base'), runsDir: path.join(root, 'runs'), runId: 'sft', lora: { r: 2 }, train: { steps: 1, batchSize: 2 } });
  const adapter = r.finalModel!;
  const cfgFile = path.join(adapter, 'adapter_config.json');
  const ac = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
  // another base: a GPT-2 model
  await saveTinyModel(path.join(root, 'gpt2'), tok, 1);
  fs.writeFileSync(cfgFile, JSON.stringify({ ...ac, base_model_name_or_path: path.join(root, 'gpt2') }));
  assert.throws(() => readModelDir(adapter), /"q_proj" is not a projection of gpt2|trained for another model|another base model/);
  fs.writeFileSync(cfgFile, JSON.stringify({ ...ac, base_model_name_or_path: path.join(root, 'nowhere') }));
  assert.throws(() => readModelDir(adapter), /the adapter's base model .*nowhere is not there/);
});

test('SFT -> reward model -> PPO with LoRA on a small Llama-layout chat model: adapters throughout, the reference is the base with the adapter off', async () => {
  const root = tmpDir();
  await saveTinyChatLlama(path.join(root, 'base'), 7);
  const words = ['good', 'bad', 'nice', 'sad', 'fun', 'dull'];
  const rng = new Rng(3);
  fs.writeFileSync(path.join(root, 'toy.rm.jsonl'), Array.from({ length: 24 }, () => JSON.stringify(labelRecord('say it', Array.from({ length: 3 }, () => `it was ${words[rng.int(6)]}`), rng))).join('\n') + '\n');
  fs.writeFileSync(path.join(root, 'toy.ppo.jsonl'), ['say it', 'tell me', 'go on'].map((p) => JSON.stringify({ prompt: p })).join('\n') + '\n');
  const lora = { r: 4 };
  const s = await sft({ data: sftData(root), model: path.join(root, 'base'), runsDir: path.join(root, 'runs'), runId: 'sft', lora, train: { steps: 10, batchSize: 4, lr: 1e-2 } });
  // the reward model starts from the SFT adapter: merged into its base (written once into the run), a new adapter and the score head on top
  const rm = await trainRewardModel({ data: path.join(root, 'toy.rm.jsonl'), model: s.finalModel!, runsDir: path.join(root, 'runs'), runId: 'rm', lora, train: { steps: 4, batchSize: 4 } });
  assert.equal(rm.run.status, 'completed');
  const rmAc = JSON.parse(fs.readFileSync(path.join(rm.finalModel!, 'adapter_config.json'), 'utf8'));
  assert.equal(rmAc.task_type, 'SEQ_CLS');
  assert.deepEqual(rmAc.modules_to_save, ['score']);
  assert.equal(rmAc.base_model_name_or_path, path.join(root, 'runs', 'rm', 'base-model'));
  const rmSt = readSafetensors(path.join(rm.finalModel!, 'adapter_model.safetensors')).tensors;
  assert.deepEqual(rmSt.get('base_model.model.score.weight')!.shape, [1, 16]);
  const rmLoaded = readModelDir(rm.finalModel!);
  assert.ok(rmLoaded.extra.has('score.weight') && Number.isFinite(rmLoaded.rawConfig.reward_mean as number));

  const ppo = await ppoTrain({ prompts: path.join(root, 'toy.ppo.jsonl'), policy: s.finalModel!, rewardModel: rm.finalModel!, runsDir: path.join(root, 'runs'), runId: 'ppo', lora, ppo: { iterations: 3, promptsPerRollout: 2, samplesPerPrompt: 2, maxNewTokens: 6, klTarget: 3, klHorizon: 100 } });
  assert.equal(ppo.run.status, 'completed');
  const pm = new RunDir(path.join(root, 'runs', 'ppo')).readMetrics();
  assert.equal(pm[0]['objective/kl'], 0, 'the first rollout: policy = reference (a fresh adapter is zero)');
  assert.ok(pm.slice(1).some((m) => m['objective/kl'] !== 0), 'the policy moved away from the reference');
  assert.ok(fs.existsSync(path.join(ppo.finalModel!, 'adapter_config.json')));
  const last = new RunDir(path.join(root, 'runs', 'ppo')).latestCheckpoint()!.dir;
  assert.ok(fs.existsSync(path.join(last, 'value', 'adapter_config.json')), 'the critic trains an adapter too');
  assert.ok(readModelDir(path.join(last, 'value')).extra.has('score.weight'), "the critic's value head is saved with its adapter");
  const pol = readModelDir(ppo.finalModel!);
  assert.equal(pol.adapter!.base, path.join(root, 'runs', 'ppo', 'base-model'));
});

test('LoRA over two gradient threads matches one thread (SFT and the reward model)', async () => {
  const root = tmpDir();
  await saveTinyChatLlama(path.join(root, 'base'), 6);
  const o = { data: sftData(root), model: path.join(root, 'base'), lora: { r: 2 } };
  const runs = path.join(root, 'runs');
  for (const threads of [1, 2]) await sft({ ...o, runsDir: runs, runId: `sft${threads}`, train: { steps: 4, batchSize: 6, evalInterval: 0, threads } });
  const adapter = (id: string) => readSafetensors(path.join(runs, id, 'checkpoints', 'final', 'adapter_model.safetensors')).tensors;
  const [a1, a2] = [adapter('sft1'), adapter('sft2')];
  assert.deepEqual([...a2.keys()], [...a1.keys()]);
  for (const [k, t] of a1) assert.ok(maxDiff(t.data, a2.get(k)!.data) < 1e-5, `${k}: one thread vs two`);
  assert.equal((new RunDir(path.join(runs, 'sft2')).read().config as { train: { threads: number } }).train.threads, 2, 'the thread count is recorded');

  const rmData = path.join(root, 'rank.jsonl');
  fs.writeFileSync(rmData, Array.from({ length: 12 }, (_, i) => JSON.stringify({ prompt: `say ${'abc'[i % 3]}`, responses: ['aa.', 'a a', 'zz?', '...'].map((r, j) => r + j), ranks: [1, 2, 3, 4] })).join('\n') + '\n');
  for (const threads of [1, 2]) await trainRewardModel({ data: rmData, model: path.join(root, 'base'), runsDir: runs, runId: `rm${threads}`, lora: { r: 2 }, train: { steps: 3, batchSize: 4, evalInterval: 0, threads } });
  const [r1, r2] = [adapter('rm1'), adapter('rm2')];
  // the score's bias has no gradient (a ranking loss sees only differences of rewards): what it gets
  // is rounding noise, which Adam scales to steps of up to lr, on either thread count. Held near 0.
  const bias = 'base_model.model.score.bias';
  for (const [k, t] of r1) if (k !== bias) assert.ok(maxDiff(t.data, r2.get(k)!.data) < 1e-5, `${k}: one thread vs two`);
  for (const r of [r1, r2]) assert.ok(Math.abs(r.get(bias)!.data[0]) <= 3 * 2e-4, `${bias}: ${r.get(bias)!.data[0]} (3 steps of at most lr 2e-4 from 0)`);
  assert.ok(r1.has('base_model.model.score.weight') || [...r1.keys()].some((k) => k.includes('score')), 'the score head is saved with the adapter');
});

test('GRPO and RLOO with LoRA: the base stays frozen, the reference is the base with the adapter off, the adapter is saved in PEFT\'s layout, and a resumed run equals an uninterrupted one', async () => {
  const root = tmpDir();
  await saveTinyChatLlama(path.join(root, 'base'), 9);
  fs.writeFileSync(path.join(root, 'toy.ppo.jsonl'), ['say it', 'tell me', 'go on', 'why not'].map((p) => JSON.stringify({ prompt: p })).join('\n') + '\n');
  const scorer = (_p: string, r: string) => (r.match(/e/g) ?? []).length - r.length / 10;
  const lora = { r: 2, alpha: 4 };
  for (const [stage, train, resume] of [['grpo', grpoTrain, resumeGrpo], ['rloo', rlooTrain, resumeRloo]] as const) {
    const cfg = { iterations: 4, promptsPerStep: 2, numGenerations: 2, maxNewTokens: 5, lr: 5e-2, beta: 0.1, checkpointInterval: 2 };
    const o = { prompts: path.join(root, 'toy.ppo.jsonl'), policy: path.join(root, 'base'), scorer, lora, [stage]: cfg };
    const a = await train({ ...o, runsDir: path.join(root, 'a'), runId: stage } as never);
    assert.equal(a.run.status, 'completed', stage);
    const m = new RunDir(path.join(root, 'a', stage)).readMetrics();
    assert.equal(m[0].kl, 0, `${stage}: the first step's policy is the reference (a fresh adapter is zero)`);
    assert.ok(m.slice(1).some((x) => x.kl > 0), `${stage}: the policy moved away from the reference`);
    const ac = JSON.parse(fs.readFileSync(path.join(a.finalModel!, 'adapter_config.json'), 'utf8'));
    assert.equal(ac.r, 2);
    assert.equal(ac.base_model_name_or_path, path.join(root, 'base'));
    const opt = readSafetensors(path.join(root, 'a', stage, 'checkpoints', 'step-000004', 'optimizer.safetensors')).tensors;
    assert.ok([...opt.keys()].length > 0 && [...opt.keys()].every((k) => k.includes('lora_')), `${stage}: optimizer state only for the adapter`);
    assert.equal(JSON.parse(fs.readFileSync(path.join(root, 'a', stage, 'run.json'), 'utf8')).config.lora.r, 2);
    // cancelled after its first checkpoint, then resumed: the same adapter bytes
    let polls = 0;
    await train({ ...o, runsDir: path.join(root, 'b'), runId: stage } as never, { shouldStop: () => ++polls > 3 });
    const b = path.join(root, 'b', stage);
    assert.equal(new RunDir(b).read().status, 'cancelled');
    await resume(b, {}, scorer);
    const fa = fs.readFileSync(path.join(a.finalModel!, 'adapter_model.safetensors'));
    const fb = fs.readFileSync(path.join(b, 'checkpoints', 'final', 'adapter_model.safetensors'));
    assert.ok(fa.equals(fb), `${stage}: adapter bytes equal after a resume`);
  }
});
