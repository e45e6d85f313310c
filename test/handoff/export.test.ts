/**
 * `rlhf export --for trl|openrlhf`: runs of each stage on a tiny chat model (a Hugging Face
 * tokenizer and chat template), exported; every flag the launch scripts give the trainer is one that
 * trainer's version defines, checked against the flag lists read from its source
 * (test/fixtures/trainer-flags/*.json, made by extract_flags.py from the tagged releases);
 * the data rows have the shapes the trainers read; the scripts parse; what cannot be exported is
 * refused in one line. `rlhf import` brings a model folder back.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { FIXTURES, ROOT, saveTinyChatLlama, saveTinyModel, testBackend, tmpDir } from '../helpers';
import { CharTokenizer } from '../../src/engine/tokenizer';
import { labelRecord } from '../../src/engine/labeler/labeler';
import { Rng } from '../../src/engine/rng';
import { sft } from '../../src/engine/stages/sft';
import { trainRewardModel } from '../../src/engine/stages/rm';
import { dpo } from '../../src/engine/stages/dpo';
import { ppoTrain } from '../../src/engine/stages/ppo';
import { grpoTrain } from '../../src/engine/stages/grpo';
import { rlooTrain } from '../../src/engine/stages/rloo';
import { exportRun } from '../../src/handoff/export';
import { RunDir } from '../../src/data/run';

const CLI = path.join(ROOT, 'dist', 'cli.js');
const flagsOf = (f: string) => JSON.parse(fs.readFileSync(path.join(FIXTURES, 'trainer-flags', f), 'utf8')) as { origin: Record<string, unknown>; flags: Record<string, string[]> };
const OPENRLHF = flagsOf('openrlhf-0.11.0.json');
const TRL = flagsOf('trl-1.9.0.json');

let root = '';
const runs: Record<string, string> = {};

before(async () => {
  await testBackend();
  root = tmpDir();
  const model = path.join(root, 'chat');
  await saveTinyChatLlama(model, 3);
  const rng = new Rng(7);
  const words = ['good', 'bad', 'nice', 'sad'];
  const data = (f: string, rows: unknown[]) => (fs.writeFileSync(path.join(root, f), rows.map((r) => JSON.stringify(r)).join('\n') + '\n'), path.join(root, f));
  const sftData = data('toy.sft.jsonl', Array.from({ length: 12 }, (_, i) => ({ prompt: `say ${i % 4}`, response: 'it was good' })));
  const rmData = data('toy.rm.jsonl', Array.from({ length: 12 }, () => labelRecord('say it', [0, 1, 2].map(() => `it was ${words[rng.int(4)]}`), rng)));
  const prompts = data('toy.ppo.jsonl', ['say it', 'tell me', 'go on'].map((prompt) => ({ prompt })));
  const runsDir = path.join(root, 'runs');
  const t = { steps: 2, batchSize: 2, checkpointInterval: 0, evalInterval: 100 };
  await sft({ data: sftData, model, train: t, lora: { r: 2, alpha: 4, dropout: 0, targets: ['q_proj', 'v_proj'] }, runsDir, runId: 'sft' });
  runs.sft = path.join(runsDir, 'sft');
  await trainRewardModel({ data: rmData, model, train: t, runsDir, runId: 'rm' });
  runs.rm = path.join(runsDir, 'rm');
  await dpo({ data: rmData, model, dpo: { beta: 0.3, kway: 'pl' }, train: t, runsDir, runId: 'dpo' });
  runs.dpo = path.join(runsDir, 'dpo');
  const rmFinal = path.join(runs.rm, 'checkpoints', 'final');
  await ppoTrain({ prompts, policy: model, rewardModel: rmFinal, ppo: { iterations: 1, promptsPerRollout: 2, samplesPerPrompt: 2, maxNewTokens: 4, checkpointInterval: 0 }, runsDir, runId: 'ppo' });
  runs.ppo = path.join(runsDir, 'ppo');
  await grpoTrain({ prompts, policy: model, rewardModel: rmFinal, grpo: { iterations: 1, promptsPerStep: 2, numGenerations: 2, maxNewTokens: 4, checkpointInterval: 0 }, runsDir, runId: 'grpo' });
  runs.grpo = path.join(runsDir, 'grpo');
  await rlooTrain({ prompts, policy: model, rewardModel: rmFinal, rloo: { iterations: 1, promptsPerStep: 2, numGenerations: 2, maxNewTokens: 4, checkpointInterval: 0 }, runsDir, runId: 'rloo' });
  runs.rloo = path.join(runsDir, 'rloo');
});

const OPENRLHF_MODULE: Record<string, string> = { sft: 'openrlhf.cli.train_sft', rm: 'openrlhf.cli.train_rm', dpo: 'openrlhf.cli.train_dpo', ppo: 'openrlhf.cli.train_ppo_ray', grpo: 'openrlhf.cli.train_ppo_ray', rloo: 'openrlhf.cli.train_ppo_ray' };
const TRL_COMMAND: Record<string, string> = { sft: 'trl sft', rm: 'trl reward', dpo: 'trl dpo', grpo: 'trl grpo', rloo: 'trl rloo' };

/** The --flags of a command's arguments (a value never starts with --). */
const flagsIn = (args: string[]) => args.filter((a) => a.startsWith('--'));

test('the fixtures name their origin: OpenRLHF v0.11.0 and TRL v1.9.0 with their commits', () => {
  assert.equal(OPENRLHF.origin.version, '0.11.0');
  assert.match(String(OPENRLHF.origin.commit), /^[0-9a-f]{40}$/);
  assert.equal(TRL.origin.tag, 'v1.9.0');
  // the dotted names of 0.11, not the old ones its README still shows in places
  assert.ok(OPENRLHF.flags['openrlhf.cli.train_dpo'].includes('--data.chosen_key'));
  assert.ok(!OPENRLHF.flags['openrlhf.cli.train_dpo'].includes('--chosen_key'));
  assert.ok(OPENRLHF.flags['openrlhf.cli.train_ppo_ray'].includes('--actor.adam.lr'), 'flags made in a loop (f-strings) are listed');
});

for (const stage of ['sft', 'rm', 'dpo', 'ppo', 'grpo', 'rloo']) {
  test(`a ${stage} run for OpenRLHF 0.11: every flag is one ${OPENRLHF_MODULE[stage]} defines; data, model and scripts are there`, () => {
    const out = path.join(tmpDir(), 'openrlhf');
    const r = exportRun(runs[stage], 'openrlhf', out);
    const known = new Set(OPENRLHF.flags[OPENRLHF_MODULE[stage]]);
    const unknown = flagsIn(r.command.args).filter((f) => !known.has(f));
    assert.deepEqual(unknown, [], `flags ${OPENRLHF_MODULE[stage]} does not define`);
    assert.ok(r.command.launcher.includes(OPENRLHF_MODULE[stage]), r.command.launcher.join(' '));
    for (const f of ['train.sh', 'train.slurm.sh', 'README.md', 'model/config.json', 'model/tokenizer.json']) assert.ok(fs.existsSync(path.join(out, f)), f);
    if (['ppo', 'grpo', 'rloo'].includes(stage)) assert.ok(fs.existsSync(path.join(out, 'reward_model', 'config.json')));
    // both scripts are valid bash and carry every argument
    for (const s of ['train.sh', 'train.slurm.sh']) {
      const check = spawnSync('bash', ['-n', path.join(out, s)], { encoding: 'utf8' });
      assert.equal(check.status, 0, `${s}: ${check.stderr}`);
      const text = fs.readFileSync(path.join(out, s), 'utf8');
      for (const f of flagsIn(r.command.args)) assert.ok(text.includes(f), `${s} has ${f}`);
    }
    const slurm = fs.readFileSync(path.join(out, 'train.slurm.sh'), 'utf8');
    assert.match(slurm, /^#SBATCH --nodes=1$/m);
    assert.match(slurm, stage === 'ppo' || stage === 'grpo' || stage === 'rloo' ? /ray start --head/ : /torchrun --nnodes "\$SLURM_NNODES"/);
    const data = path.join(out, r.plan.data);
    const rows = fs.readFileSync(data, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    if (stage === 'sft') {
      assert.deepEqual(Object.keys(rows[0]), ['input', 'output']);
      assert.deepEqual(rows[0].output, [{ role: 'assistant', content: 'it was good' }]);
      assert.ok(r.command.args.includes('--data.apply_chat_template'));
      assert.deepEqual(r.command.args.slice(r.command.args.indexOf('--ds.lora.rank'), r.command.args.indexOf('--ds.lora.rank') + 2), ['--ds.lora.rank', '2']);
    } else if (stage === 'rm' || stage === 'dpo') {
      // K = 3 rankings: up to 3 pairs each, with the rank difference as the margin
      assert.ok(rows.length > 12 && rows.length <= 36, `${rows.length} pairs`);
      assert.deepEqual(Object.keys(rows[0]).sort(), ['chosen', 'margin', 'prompt', 'rejected']);
      assert.ok(rows.every((x) => x.margin >= 1));
    } else assert.deepEqual(Object.keys(rows[0]), ['prompt']);
  });
}

for (const stage of ['sft', 'rm', 'dpo', 'grpo', 'rloo']) {
  test(`a ${stage} run for TRL 1.9: every flag is a field of ${TRL_COMMAND[stage]}'s dataclasses or TrainingArguments`, () => {
    const out = path.join(tmpDir(), 'trl');
    const r = exportRun(runs[stage], 'trl', out);
    assert.deepEqual(r.command.launcher, TRL_COMMAND[stage].split(' '));
    const known = new Set([...TRL.flags[TRL_COMMAND[stage]], ...TRL.flags['transformers.TrainingArguments']]);
    assert.deepEqual(flagsIn(r.command.args).filter((f) => !known.has(f)), [], `flags ${TRL_COMMAND[stage]} does not take`);
    for (const s of ['train.sh', 'train.slurm.sh']) assert.equal(spawnSync('bash', ['-n', path.join(out, s)]).status, 0, s);
    assert.match(fs.readFileSync(path.join(out, 'train.sh'), 'utf8'), /--accelerate_config zero2/);
    const rows = fs.readFileSync(path.join(out, r.plan.data, 'train.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    if (stage === 'sft') {
      assert.deepEqual(rows[0], { prompt: [{ role: 'user', content: 'say 0' }], completion: [{ role: 'assistant', content: 'it was good' }] });
      const a = r.command.args;
      assert.deepEqual(a.slice(a.indexOf('--lora_target_modules'), a.indexOf('--lora_target_modules') + 3), ['--lora_target_modules', 'q_proj', 'v_proj']);
    }
    if (stage === 'dpo') assert.equal(r.command.args[r.command.args.indexOf('--beta') + 1], '0.3');
  });
}

test('what cannot be exported is refused in one line before anything is written', async () => {
  const out = path.join(tmpDir(), 'x');
  assert.throws(() => exportRun(runs.ppo, 'trl', out), /TRL 1\.9\.0 has no command for PPO runs .*export this run --for openrlhf/);
  assert.ok(!fs.existsSync(out));
  // a run on this project's character model: Transformers cannot load its tokenizer
  const tok = CharTokenizer.fromText('abcdefghijklmnopqrstuvwxyz ?.,:HA\n');
  const charModel = path.join(root, 'char');
  await saveTinyModel(charModel, tok);
  await sft({ data: path.join(root, 'toy.sft.jsonl'), model: charModel, train: { steps: 1, batchSize: 2, checkpointInterval: 0, evalInterval: 100 }, runsDir: path.join(root, 'runs'), runId: 'char-sft' });
  const run = path.join(root, 'runs', 'char-sft');
  const r = spawnSync(process.execPath, [CLI, 'export', run, '--for', 'openrlhf', '--out', out], { encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^rlhf export: Transformers cannot load the model of this run \(it uses this project's character tokenizer\): export a run on a Hugging Face model/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  assert.ok(!fs.existsSync(out));
});

test('rlhf import brings a trainer\'s model folder into models/ once it loads and scores text', () => {
  const ws = tmpDir();
  const out = path.join(tmpDir(), 'export');
  exportRun(runs.sft, 'openrlhf', out);
  // the trainer would write output/; its model is an HF folder like the exported one
  const r = spawnSync(process.execPath, [CLI, 'import', path.join(out, 'model'), '--name', 'from-openrlhf', '--backend', 'wasm'], { encoding: 'utf8', cwd: ws });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /imported .* \(it loads and scores a sentence: log p = -\d/);
  assert.ok(fs.existsSync(path.join(ws, 'models', 'from-openrlhf', 'model.safetensors')));
  const again = spawnSync(process.execPath, [CLI, 'import', path.join(out, 'data'), '--backend', 'wasm'], { encoding: 'utf8', cwd: ws });
  assert.equal(again.status, 1);
  assert.match(again.stderr, /holds no model \(no config\.json, nor a LoRA adapter's adapter_config\.json\) and no training log \(no TensorBoard event files, no trainer_state\.json\)/);
});

test('rlhf import takes a LoRA adapter folder (as TRL saves one with PEFT): the copy still finds its base and loads', () => {
  const ws = tmpDir();
  const written = path.join(runs.sft, 'checkpoints', 'final');
  assert.ok(fs.existsSync(path.join(written, 'adapter_config.json')) && !fs.existsSync(path.join(written, 'config.json')), 'the LoRA run wrote an adapter folder');
  // as a trainer leaves it: the base named relative to the adapter's folder (the copy is elsewhere)
  const adapter = path.join(tmpDir(), 'output');
  fs.cpSync(written, adapter, { recursive: true });
  const ac = JSON.parse(fs.readFileSync(path.join(adapter, 'adapter_config.json'), 'utf8'));
  ac.base_model_name_or_path = path.relative(adapter, ac.base_model_name_or_path);
  fs.writeFileSync(path.join(adapter, 'adapter_config.json'), JSON.stringify(ac));
  const r = spawnSync(process.execPath, [CLI, 'import', adapter, '--name', 'trl-lora', '--backend', 'wasm'], { encoding: 'utf8', cwd: ws });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /imported .* \(a LoRA adapter on its base\) \(it loads and scores a sentence: log p = -\d/);
  const copy = path.join(ws, 'models', 'trl-lora');
  const base = JSON.parse(fs.readFileSync(path.join(copy, 'adapter_config.json'), 'utf8')).base_model_name_or_path as string;
  assert.ok(fs.existsSync(path.join(path.resolve(copy, base), 'config.json')), `the copy's base ${base} is there`);
  // and it generates from the copy, away from the run folder
  const g = spawnSync(process.execPath, [CLI, 'generate', '--model', copy, '--prompt', 'say 1', '--max-tokens', '3', '--backend', 'wasm', '--json'], { encoding: 'utf8', cwd: ws });
  assert.equal(g.status, 0, g.stderr);
});

test('an adapter saved without its base (base_model_name_or_path: null, as a real PEFT adapter has it) is refused with the fix; --base imports it, nothing half-written before', () => {
  const ws = tmpDir();
  const written = path.join(runs.sft, 'checkpoints', 'final');
  const baseDir = JSON.parse(fs.readFileSync(path.join(written, 'adapter_config.json'), 'utf8')).base_model_name_or_path as string;
  const adapter = path.join(tmpDir(), 'adapter');
  fs.cpSync(written, adapter, { recursive: true });
  const ac = JSON.parse(fs.readFileSync(path.join(adapter, 'adapter_config.json'), 'utf8'));
  ac.base_model_name_or_path = null;
  fs.writeFileSync(path.join(adapter, 'adapter_config.json'), JSON.stringify(ac));
  const refused = spawnSync(process.execPath, [CLI, 'import', adapter, '--name', 'no-base', '--backend', 'wasm'], { encoding: 'utf8', cwd: ws });
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /base_model_name_or_path names no base model \(rlhf import DIR --base MODEL makes a copy that names one\)/);
  assert.deepEqual(fs.existsSync(path.join(ws, 'models')) ? fs.readdirSync(path.join(ws, 'models')) : [], [], 'no copy, no staging folder left');
  const wrong = spawnSync(process.execPath, [CLI, 'import', adapter, '--name', 'no-base', '--base', path.join(ws, 'nothing-here'), '--backend', 'wasm'], { encoding: 'utf8', cwd: ws });
  assert.equal(wrong.status, 2);
  assert.match(wrong.stderr, /--base .*nothing-here: not a model folder nor a model in the Hugging Face cache/);
  const r = spawnSync(process.execPath, [CLI, 'import', adapter, '--name', 'no-base', '--base', baseDir, '--backend', 'wasm'], { encoding: 'utf8', cwd: ws });
  assert.equal(r.status, 0, r.stderr);
  const copy = path.join(ws, 'models', 'no-base');
  const named = JSON.parse(fs.readFileSync(path.join(copy, 'adapter_config.json'), 'utf8')).base_model_name_or_path as string;
  assert.equal(path.resolve(copy, named), path.resolve(baseDir));
  assert.deepEqual(fs.readdirSync(path.join(ws, 'models')), ['no-base']);
});

test('rlhf import also brings the trainer\'s log (a real TRL trainer_state.json in checkpoint-N/) as a completed run with its curves', () => {
  const ws = tmpDir();
  const out = path.join(tmpDir(), 'export');
  exportRun(runs.sft, 'trl', out);
  const ckpt = path.join(out, 'model', 'checkpoint-2800');
  fs.mkdirSync(ckpt);
  fs.copyFileSync(path.join(FIXTURES, 'trl', 'trainer_state.json'), path.join(ckpt, 'trainer_state.json'));
  const r = spawnSync(process.execPath, [CLI, 'import', path.join(out, 'model'), '--name', 'from-trl', '--backend', 'wasm', '--json'], { encoding: 'utf8', cwd: ws });
  assert.equal(r.status, 0, r.stderr);
  const result = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  assert.equal(result.run, path.join(ws, '.rlhf', 'runs', 'from-trl'));
  const run = new RunDir(result.run);
  const info = run.read();
  assert.equal(info.status, 'completed');
  assert.equal(info.stage, 'sft');
  assert.equal(info.final_model, path.join(ws, 'models', 'from-trl'));
  const m = run.readMetrics();
  assert.equal(m.length, result.steps);
  assert.ok(m.every((x) => Number.isFinite(x.step) && Number.isFinite(x.time)));
  assert.ok(m.some((x) => 'eval/loss' in x) && m.some((x) => 'mean_token_accuracy' in x));
  // a second import under the same name is refused before anything is written
  const again = spawnSync(process.execPath, [CLI, 'import', path.join(out, 'model'), '--name', 'from-trl', '--backend', 'wasm'], { encoding: 'utf8', cwd: ws });
  assert.equal(again.status, 1);
  assert.match(again.stderr, /already exists: choose another --name/);
});

test('rlhf import reads TensorBoard event files under the output folder\'s runs/ (real writers\' files) into a run that keeps their clock; a logging dir alone brings the log alone', () => {
  const ws = tmpDir();
  const out = path.join(tmpDir(), 'export');
  exportRun(runs.sft, 'trl', out);
  // where a Trainer with report_to=tensorboard writes: output_dir/runs/<date>_<host>/
  const logdir = path.join(out, 'model', 'runs', 'Aug28_12-04-27_applepie4');
  fs.mkdirSync(logdir, { recursive: true });
  fs.copyFileSync(path.join(FIXTURES, 'tensorboard', 'tensorboardx', 'events.out.tfevents.1661684667.applepie4'), path.join(logdir, 'events.out.tfevents.1661684667.applepie4'));
  const r = spawnSync(process.execPath, [CLI, 'import', path.join(out, 'model'), '--name', 'with-tb', '--stage', 'sft', '--backend', 'wasm', '--json'], { encoding: 'utf8', cwd: ws });
  assert.equal(r.status, 0, r.stderr);
  const result = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  assert.equal(result.model, path.join(ws, 'models', 'with-tb'));
  assert.equal(result.log, path.join(out, 'model'));
  const run = new RunDir(result.run);
  assert.equal(run.read().final_model, result.model);
  const m = run.readMetrics();
  // tensorboardX's add_scalar('tag', i, global_step=i) for i in 0..9, each at its own wall time
  assert.deepEqual(m.map((x) => [x.step, x.tag]), Array.from({ length: 10 }, (_, i) => [i, i]));
  assert.ok(m.every((x, i) => x.time > 1661684667 && x.time < 1661684667 + 60 && (i === 0 || x.time >= m[i - 1].time)), 'the writer\'s clock, in order');
  assert.equal(run.read().config.time, 'the wall times the event files record');

  // a logging dir with no model: the run alone (TensorFlow's own writer: lingvo's test file)
  const only = path.join(tmpDir(), 'dev');
  fs.mkdirSync(only);
  fs.copyFileSync(path.join(FIXTURES, 'tensorboard', 'lingvo', 'events.out.tfevents.test'), path.join(only, 'events.out.tfevents.test'));
  const r2 = spawnSync(process.execPath, [CLI, 'import', only, '--stage', 'sft', '--backend', 'wasm'], { encoding: 'utf8', cwd: ws });
  assert.equal(r2.status, 0, r2.stderr);
  assert.match(r2.stderr, /its training log \(.*dev\): \d+ logged steps as run .*dev \(sft\); the dashboard shows it\. Times: the wall times the event files record/);
  assert.ok(!fs.existsSync(path.join(ws, 'models', 'dev')), 'no model folder for a log alone');
  const info = new RunDir(path.join(ws, '.rlhf', 'runs', 'dev')).read();
  assert.equal(info.status, 'completed');
  assert.equal(info.final_model, undefined);

  // event files with no scalar yet (only the file version event: a run stopped before its first
  // logging step) do not stop the model's import; they are named in a note
  const early = path.join(tmpDir(), 'early');
  exportRun(runs.sft, 'trl', early);
  fs.mkdirSync(path.join(early, 'model', 'runs', 'x'), { recursive: true });
  fs.writeFileSync(path.join(early, 'model', 'runs', 'x', 'events.out.tfevents.1.host'), fs.readFileSync(path.join(FIXTURES, 'tensorboard', 'tensorboardx', 'events.out.tfevents.1661684667.applepie4')).subarray(0, 40));
  const r3 = spawnSync(process.execPath, [CLI, 'import', path.join(early, 'model'), '--name', 'early', '--backend', 'wasm'], { encoding: 'utf8', cwd: ws });
  assert.equal(r3.status, 0, r3.stderr);
  assert.match(r3.stderr, /imported .*early/);
  assert.match(r3.stderr, /note: .*the event files hold no scalars \(1 file read\); not imported/);
  assert.ok(!fs.existsSync(path.join(ws, '.rlhf', 'runs', 'early')));
  // --base is for an adapter only
  const r4 = spawnSync(process.execPath, [CLI, 'import', path.join(early, 'model'), '--name', 'early2', '--base', 'x', '--backend', 'wasm'], { encoding: 'utf8', cwd: ws });
  assert.equal(r4.status, 2);
  assert.match(r4.stderr, /--base is for a LoRA adapter folder/);
});

