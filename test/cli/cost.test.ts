/**
 * rlhf cost: the text's figures from stated assumptions (GPT-3's training, ChatGPT's January 2023
 * serving), the FLOP counts of each kind of pass, and, after a local run, the estimate that run.json
 * keeps beside what the run took.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as path from 'path';
import { ROOT, testBackend, tmpDir } from '../helpers';
import { GPUS, KNOWN_MODELS, estimateCost, passFlops } from '../../src/engine/cost';
import { sft } from '../../src/engine/stages/sft';
import { RunDir } from '../../src/data/run';
import { listRuns, runNodes } from '../../src/data/runs-tree';
import { readSpeeds } from '../../src/engine/speed-cache';

before(testBackend);

const CLI = path.join(ROOT, 'dist', 'cli.js');
const rlhf = (env: Record<string, string>, ...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
const within2x = (x: number, target: number) => x >= target / 2 && x <= target * 2;

test('GPT-3 175B on 300B tokens costs about the text\'s 1.4 million dollars on A100s', () => {
  const r = rlhf({}, 'cost', '--model', 'gpt3-175b', '--tokens', '300e9', '--gpu', 'a100', '--json');
  assert.equal(r.status, 0, r.stderr);
  const e = JSON.parse(r.stdout);
  // 6 N D plus attention: 3.1e23 (Brown et al. give 3.14e23 FLOPs for GPT-3 175B)
  assert.ok(e.flops > 3.1e23 && e.flops < 3.3e23, `${e.flops} FLOPs`);
  assert.ok(within2x(e.dollars, 1.4e6), `$${e.dollars}`);
  assert.ok(e.gpu_hours > 0 && e.kwh > 0);
  assert.ok(e.assumptions.some((a: string) => /40% model-FLOPs utilisation/.test(a)) && e.assumptions.some((a: string) => /\$2\.00 per GPU-hour/.test(a)), 'the assumptions are printed');
  const text = rlhf({}, 'cost', '--model', 'gpt3-175b', '--tokens', '300e9', '--gpu', 'a100', '--gpus', '1024');
  assert.match(text.stderr + text.stdout, /323 ZFLOP, 29\.3 days, 719k GPU-hours, .*\$1\.44M/);
});

test('serving 13 million daily users needs about 30,000 A100s, 800 million dollars of them and 50,000 dollars of electricity a day', () => {
  const r = rlhf({}, 'cost', 'serve', '--model', 'gpt3-175b', '--daily-users', '13e6', '--gpu', 'a100', '--json');
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  assert.ok(within2x(s.gpus, 30_000), `${s.gpus} GPUs`);
  assert.ok(within2x(s.hardware_dollars, 800e6), `$${s.hardware_dollars}`);
  assert.ok(within2x(s.electricity_dollars_per_day, 50_000), `$${s.electricity_dollars_per_day} a day`);
  assert.equal(s.assumptions.length, 4);
});

test('FLOPs per token: 6N trained, 4N with LoRA (no weight gradients of frozen weights), 2N forward, plus attention', () => {
  const m = { name: 'm', params: 1e6, layers: 2, width: 64, context: 128 };
  const attn = 4 * 2 * 100 * 64;
  assert.equal(passFlops({ what: '', kind: 'forward', model: m, tokens: 10, context: 100 }), 10 * (2e6 + attn));
  assert.equal(passFlops({ what: '', kind: 'train', model: m, tokens: 10, context: 100 }), 10 * 3 * (2e6 + attn));
  assert.equal(passFlops({ what: '', kind: 'train', model: m, tokens: 10, context: 100, loraParams: 1000 }), 10 * (4e6 + 3 * attn + 6000));
  const e = estimateCost([{ what: 't', kind: 'train', model: KNOWN_MODELS['gpt2'], tokens: 1e9, context: 1024 }], { kind: 'gpu', gpu: GPUS.h100, gpus: 8, mfu: 0.5, pricePerHour: 3, pue: 1, kwhPrice: 0.1 });
  assert.ok(Math.abs(e.seconds - e.flops / (989e12 * 0.5 * 8)) < 1e-6 && Math.abs(e.gpu_hours! - (e.seconds * 8) / 3600) < 1e-9);
  assert.ok(Math.abs(e.kwh! - e.gpu_hours! * 0.7) < 1e-9 && Math.abs(e.dollars! - e.gpu_hours! * 3) < 1e-9);
});

test('bad input: an unknown model, no tokens, an unknown GPU, no measured speed: one line each', () => {
  const cache = tmpDir();
  const cases: [string[], RegExp][] = [
    [['cost', '--model', 'nope', '--tokens', '1e9'], /--model nope: neither a known model .* nor a model folder with a config\.json/],
    [['cost', '--model', 'gpt2'], /needs --tokens/],
    [['cost', '--model', 'gpt2', '--tokens', '1e9', '--gpu', 'v100'], /--gpu must be local or one of a100, h100, h200/],
    [['cost', '--model', 'gpt2', '--tokens', '1e9'], /no training speed measured on this machine yet .*: run rlhf bench train, or choose a GPU/],
  ];
  for (const [args, re] of cases) {
    const r = rlhf({ RLHF_CACHE_DIR: cache }, ...args);
    assert.notEqual(r.status, 0, args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, re);
  }
});

test('after a local run the estimate and the actual time sit side by side, within a factor of 2; rlhf bench and runs measure the speed', async () => {
  const cache = tmpDir();
  process.env.RLHF_CACHE_DIR = cache;
  const root = tmpDir();
  const model = path.join(ROOT, 'examples', 'workspace', 'models', 'base-char');
  const data = path.join(ROOT, 'examples', 'workspace', 'data', 'reviews.sft.jsonl');
  const lines: string[] = [];
  const o = { data, model, runsDir: root, train: { steps: 10, evalInterval: 0, checkpointInterval: 0 } };
  await sft({ ...o, runId: 'first' }, { log: (l) => lines.push(l) });
  assert.match(lines.find((l) => l.startsWith('estimated cost'))!, /no training speed measured on this machine for the wasm backend yet/);
  assert.equal(readSpeeds().length, 1, 'the run measured the speed');
  lines.length = 0;
  await sft({ ...o, runId: 'second', train: { ...o.train, steps: 20 } }, { log: (l) => lines.push(l) });
  assert.match(lines.find((l) => l.startsWith('estimated cost'))!, /GFLOP, [\d.]+ s .*measured by run first/);
  const cost = new RunDir(path.join(root, 'second')).read().cost!;
  assert.ok(cost.estimate && cost.actual);
  assert.ok(within2x(cost.actual.seconds, cost.estimate.seconds), `estimated ${cost.estimate.seconds} s, took ${cost.actual.seconds} s`);
  assert.ok(Math.abs(cost.actual.flops - cost.estimate.flops) / cost.estimate.flops < 1e-9, 'the run trained the tokens it planned');
  const node = runNodes(listRuns(root), 'sft').find((n) => n.label === 'second') as { tooltip: string };
  assert.match(node.tooltip, /training took [\d.]+ s for [\d.]+ TFLOP; estimated [\d.]+ s and [\d.]+ TFLOP/);

  const b = rlhf({ RLHF_CACHE_DIR: cache }, 'bench', 'train', '--layers', '1', '--embd', '16', '--heads', '2', '--block', '16', '--vocab', '32', '--batch', '2', '--steps', '2', '--threads', '1', '--backend', 'wasm', '--json');
  assert.equal(b.status, 0, b.stderr);
  assert.ok(readSpeeds().some((m) => m.source === 'rlhf bench train' && m.kind === 'train'), 'rlhf bench train recorded its speed');
  const c = rlhf({ RLHF_CACHE_DIR: cache }, 'cost', '--model', model, '--tokens', '1e6', '--json');
  assert.equal(c.status, 0, c.stderr);
  assert.ok(JSON.parse(c.stdout).seconds > 0, 'a local estimate from the measured speed');
});
