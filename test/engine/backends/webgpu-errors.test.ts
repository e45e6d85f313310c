// What a user sees when WebGPU cannot do what was asked: one line naming the limit and the fix, and
// no garbage afterwards. A process of its own: a GPU error leaves the backend refusing every read.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { ROOT, startWebGpuForTests } from '../../helpers';
import { take } from '../../../src/engine/read';

let unavailable: string | undefined;
before(async () => {
  unavailable = await startWebGpuForTests();
});

const CLI = path.join(ROOT, 'dist', 'cli.js');

test('a model or batch over the adapter\'s buffer limit is refused before anything runs, in one line with the fix', (t) => {
  if (unavailable) return t.skip(unavailable);
  // GPT-2's embedding (50257 x 768 floats, 147 MiB) on an adapter that binds at most 128 MiB (llvmpipe)
  const limit = Number(JSON.parse(spawnSync(process.execPath, [CLI, 'backends', '--json'], { encoding: 'utf8' }).stdout).backends.find((b: { name: string }) => b.name === 'webgpu').limits.max_storage_buffer_binding_size);
  const vocab = Math.ceil(limit / (4 * 768)) + 1;
  const r = spawnSync(process.execPath, [CLI, 'bench', 'train', '--backend', 'webgpu', '--layers', '1', '--heads', '12', '--embd', '768', '--block', '64', '--batch', '1', '--vocab', String(vocab), '--steps', '1'], { encoding: 'utf8', env: { ...process.env, RLHF_DEBUG: '' } });
  assert.equal(r.status, 1);
  const lines = r.stderr.split('\n').filter((l) => l && !l.startsWith('Warning: ') && !l.startsWith('backend: ')); // Dawn's notes on llvmpipe; the backend line
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /^rlhf bench: WebGPU: the weight wte\.weight \[\d+,768\] is \d+ MiB, over this adapter's \d+ MiB per-buffer limit; try .*--backend wasm/);
});

test('a GPU error in the middle of work (a tensor over the binding limit) stops the next read with one line, and every read after it', async (t) => {
  if (unavailable) return t.skip(unavailable);
  const words = Math.ceil((128 * 2 ** 20) / 4) + 1024; // just over llvmpipe's 128 MiB storage binding
  await assert.rejects(take(tf.tidy(() => tf.add(tf.zeros([words]), 1))), /^Error: WebGPU: an operation over the adapter's limits \(.*\); try a smaller --batch-size/);
  await assert.rejects(take(tf.tidy(() => tf.add(tf.ones([4]), 1))), /WebGPU: an operation over the adapter's limits/, 'a later read must not return garbage');
});
