import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzz } from './fuzz';

// A seeded sample in every test run (every named case of the review included); `npm run fuzz` runs
// 300 dataset files and 100 model folders.
test('fuzz: validate, stats and model loading on generated bad inputs all answer clearly, under 10 s and 1 GB each', { timeout: 300_000 }, async () => {
  const r = await fuzz({ datasets: Number(process.env.RLHF_FUZZ_DATASETS ?? 40), models: Number(process.env.RLHF_FUZZ_MODELS ?? 30) });
  console.log(`# ${JSON.stringify(r.counts)}; slowest ${r.slowest.toFixed(2)} s, peak ${Math.round(r.peakMb)} MB`);
  const bad = r.runs.filter((x) => x.outcome !== 'clear').map((x) => `${x.outcome}: ${x.command} ${x.name}: ${x.firstLine}`);
  assert.deepEqual(bad, []);
  assert.ok(r.slowest < 10);
});
