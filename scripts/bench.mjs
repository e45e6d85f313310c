// `npm run bench`: training tokens/s and model FLOP/s for nanoGPT's documented CPU configuration
// (n_layer 4, n_head 4, n_embd 128, block 64, batch 12, vocab 65) on every backend that starts
// here, then generation tokens/s with and without the key/value cache. Each backend runs in its
// own process. Not a test: it prints figures.
import { spawnSync } from 'child_process';

const shape = ['--layers', '4', '--heads', '4', '--embd', '128', '--block', '64', '--batch', '12', '--vocab', '65'];
const rows = [];
for (const backend of ['gpu', 'node', 'wasm', 'cpu']) {
  const steps = backend === 'cpu' ? '3' : '20';
  const r = spawnSync(process.execPath, ['dist/cli.js', 'bench', 'train', ...shape, '--steps', steps, '--backend', backend, '--json'], { encoding: 'utf8' });
  const line = r.stdout.trim().split('\n').at(-1);
  if (r.status !== 0 || !line) {
    rows.push({ backend, note: (r.stderr.trim().split('\n').at(-1) ?? '').replace(/^rlhf bench: /, '').split(';')[0] });
    continue;
  }
  rows.push(JSON.parse(line));
}
console.log('Training, nanoGPT CPU configuration (4 layers, 4 heads, 128 wide, block 64, batch 12, vocab 65)');
console.log('backend  tokens/s  model GFLOP/s  ms/step  tensors after step 1 / last');
for (const r of rows) {
  if (r.note) console.log(`${r.backend.padEnd(8)} unavailable: ${r.note}`);
  else console.log(`${r.backend.padEnd(8)} ${r.tokens_per_second.toFixed(0).padStart(8)}  ${(r.model_flops_per_second / 1e9).toFixed(2).padStart(13)}  ${r.ms_per_step.toFixed(0).padStart(7)}  ${r.tensors_after_step_1} / ${r.tensors_after_last_step}`);
}
const g = spawnSync(process.execPath, ['dist/cli.js', 'bench', 'generate', ...shape, '--backend', 'wasm', '--json'], { encoding: 'utf8' });
const gen = JSON.parse(g.stdout.trim().split('\n').at(-1));
console.log(`\nGeneration (wasm, same model, ${gen.new_tokens} new tokens): ${gen.cached_tokens_per_second.toFixed(0)} tokens/s with the KV cache, ${gen.uncached_tokens_per_second.toFixed(0)} without; same tokens: ${gen.cached_equals_uncached}`);
