// scripts/gpu-check.sh runs to the end here and prints one JSON line: on llvmpipe, flagged as a
// software adapter, with the parity figures and the bench at the small shape.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as path from 'path';
import { ROOT } from '../helpers';

test('gpu-check.sh prints one JSON line: backends, WebGPU parity with wasm, throughput with its overhead apart', (t) => {
  const r = spawnSync('bash', [path.join(ROOT, 'scripts', 'gpu-check.sh'), '--steps', '2', '--peak-tflops', '1'], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1, r.stdout);
  const j = JSON.parse(lines[0]);
  if (!j.backends.webgpu.available) {
    if (process.env.RLHF_REQUIRE_WEBGPU === '1') assert.fail(`no WebGPU here: ${j.backends.webgpu.why}`);
    return t.skip(`no WebGPU here: ${j.backends.webgpu.why}`);
  }
  console.log(`# ${lines[0]}`);
  assert.equal(j.webgpu.parity.ok, true);
  assert.ok(j.webgpu.train.tokens_per_second > 0 && j.webgpu.train.first_step_seconds > 0);
  assert.equal(j.webgpu.train.gpu_bytes_flat, true);
  if (j.backends.webgpu.software) {
    assert.match(j.webgpu.train.shape, /software adapter/);
    assert.equal(j.auto, 'wasm', 'auto never takes a software adapter');
  } else assert.ok(j.webgpu.train.fraction_of_peak > 0);
});
