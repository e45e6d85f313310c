/**
 * The cost line before a cluster submission (src/cli/commands/submit-estimate.ts): Slurm's time
 * formats, the time against the limit, GPUs at rlhf cost's assumptions when no CUDA speed was
 * measured here, and this machine's measured speed for a CPU job. The same estimate against a
 * real cluster, equal to what each stage then planned, is in test/cluster/submit.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tmpDir } from '../helpers';
import { estimateRuns, slurmSeconds } from '../../src/cli/commands/submit-estimate';
import { GPUS, DEFAULT_TRAIN_MFU, Pass } from '../../src/engine/cost';
import { recordSpeed } from '../../src/engine/speed-cache';

test("Slurm's time formats in seconds: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S", () => {
  assert.equal(slurmSeconds('90'), 5400);
  assert.equal(slurmSeconds('1:30'), 90);
  assert.equal(slurmSeconds('2:00:00'), 7200);
  assert.equal(slurmSeconds('1-12'), 129600);
  assert.equal(slurmSeconds('1-0:30'), 88200);
  assert.equal(slurmSeconds('1-0:30:15'), 88215);
  assert.equal(slurmSeconds('soon'), undefined);
});

const model = { name: 'm', params: 1e9, layers: 16, width: 2048, context: 2048 };
const passes: Pass[] = [{ what: 'training', kind: 'train', model, tokens: 1e9, context: 1024 }];

test('a GPU job without a measured CUDA speed: A100 or H100 at rlhf cost\'s utilisation, every GPU the job holds paid for; the time against the limit', () => {
  process.env.RLHF_CACHE_DIR = tmpDir(); // no measured speed at all
  const flops = 6 * 1e9 * 1e9 + 1e9 * 3 * 4 * 16 * 1024 * 2048; // 6N per token, and the attention term of passFlops
  const [one] = estimateRuns([{ runId: 'a', stage: 'sft', backend: 'auto', passes }], { gpusPerNode: 1, time: '6:00:00' }, 'h100');
  const seconds = one.flops / (GPUS.h100.peakFlops * DEFAULT_TRAIN_MFU);
  assert.ok(Math.abs(one.flops - flops) / flops < 0.2, `${one.flops} vs about ${flops}`);
  assert.ok(Math.abs(one.seconds! - seconds) < 1e-9 * seconds);
  assert.match(one.line, /^a \(sft\): estimated cost: .*1 x NVIDIA H100 SXM.*; within the time limit \(6\.00 h\)$/);
  const [four] = estimateRuns([{ runId: 'a', stage: 'sft', backend: 'auto', passes }], { gpusPerNode: 4, time: '5' }, 'h100');
  assert.equal(four.seconds, one.seconds, 'the engine trains on one GPU');
  assert.ok(Math.abs(four.dollars! - 4 * one.dollars!) < 1e-9, 'four are paid for');
  assert.match(four.line, /the job's 4 are paid for/);
  assert.match(four.line, /more than the time limit \(5\.00 min\): the job stops at a checkpoint 2 minutes before it and requeues itself, about \d+ time\(s\)$/);
});

test('a CPU job: this machine\'s measured speed of the backend the stage asks for (auto: native, then WebAssembly); none measured says so', () => {
  process.env.RLHF_CACHE_DIR = tmpDir();
  const [none] = estimateRuns([{ runId: 'b', stage: 'rm', backend: 'auto', passes }], {}, 'a100');
  assert.equal(none.seconds, undefined);
  assert.match(none.line, /^b \(rm\): estimated cost: [\d.]+ \wFLOP; no training speed of the node or wasm or cpu backend measured on this machine yet/);
  recordSpeed({ kind: 'train', backend: 'wasm', threads: 2, params: 1e9, flops_per_second: 1e10, source: 'a test' });
  recordSpeed({ kind: 'train', backend: 'cpu', threads: 1, params: 1e9, flops_per_second: 1e8, source: 'a test' });
  const [auto] = estimateRuns([{ runId: 'b', stage: 'rm', backend: 'auto', passes }], {}, 'a100');
  assert.ok(Math.abs(auto.seconds! - auto.flops / 1e10) < 1e-6 * auto.seconds!, 'auto on a CPU node: WebAssembly, not plain JavaScript');
  const [cpu] = estimateRuns([{ runId: 'b', stage: 'rm', backend: 'cpu', passes }], {}, 'a100');
  assert.ok(Math.abs(cpu.seconds! - cpu.flops / 1e8) < 1e-6 * cpu.seconds!);
  assert.match(cpu.line, /this machine's cpu backend as measured by a test/);
  delete process.env.RLHF_CACHE_DIR;
});
