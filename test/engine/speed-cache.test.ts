import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'path';
import { tmpDir } from '../helpers';
import { nearestSpeed, recordSpeed } from '../../src/engine/speed-cache';

test('the speed an estimate uses: the median of the latest measurements nearest in size, so one slowed run does not set it', () => {
  const file = path.join(tmpDir(), 'speeds.json');
  assert.equal(nearestSpeed('train', 'wasm', 1e6, file), undefined);
  const m = (params: number, flops: number, source: string) => recordSpeed({ kind: 'train', backend: 'wasm', threads: 2, params, flops_per_second: flops, source }, file);
  m(1e6, 20e9, 'run a');
  assert.equal(nearestSpeed('train', 'wasm', 1.02e6, file)!.flops_per_second, 20e9, 'one measurement: itself');
  m(1e6, 4e9, 'run b (the machine was busy)');
  m(1.05e6, 22e9, 'run c');
  m(100e6, 2e9, 'a large model');
  const s = nearestSpeed('train', 'wasm', 1e6, file)!;
  assert.equal(s.flops_per_second, 20e9, 'the median of 20, 4 and 22 GFLOP/s');
  assert.match(s.source, /^run a \(the median of the last 3 measurements at this size\)$/);
  assert.equal(nearestSpeed('train', 'wasm', 80e6, file)!.source, 'a large model');
  assert.equal(nearestSpeed('generate', 'wasm', 1e6, file), undefined, 'another kind is not used');
  assert.equal(nearestSpeed('train', 'webgpu', 1e6, file), undefined, 'nor another backend');
});
