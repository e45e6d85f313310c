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

// Dataset indexing: a generated 1 GB RM file (about 1M K-way records), beside `wc -l` on it.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
const big = path.join(os.tmpdir(), 'rlhf-bench-1gb.rm.jsonl');
const target = 1e9;
if (!fs.existsSync(big) || fs.statSync(big).size < target) {
  const fd = fs.openSync(big, 'w');
  const words = ['the', 'harbor', 'was', 'lovely', 'and', 'the', 'chowder', 'terrible', 'but', 'the', 'view', 'wonderful'];
  let written = 0, n = 0;
  while (written < target) {
    const lines = [];
    for (let i = 0; i < 2000; i++, n++) {
      const resp = Array.from({ length: 4 }, (_, k) => Array.from({ length: 30 + ((n + k) % 20) }, (_, j) => words[(n * 7 + j * 3 + k) % words.length]).join(' ') + '.');
      lines.push(JSON.stringify({ id: `r${n}`, prompt: `Write review number ${n} of the harbor inn, please, in a few sentences.`, responses: resp, ranks: [1, 2, 3, 4], annotator: `labeler-${n % 17}`, created_at: '2026-11-29T00:00:00.000Z' }));
    }
    const buf = Buffer.from(lines.join('\n') + '\n');
    fs.writeSync(fd, buf);
    written += buf.length;
  }
  fs.closeSync(fd);
}
const size = fs.statSync(big).size;
let t = performance.now();
const wc = spawnSync('wc', ['-l', big], { encoding: 'utf8' });
const wcSeconds = (performance.now() - t) / 1000;
const idx = JSON.parse(spawnSync(process.execPath, ['dist/cli.js', 'bench', 'index', big, '--json'], { encoding: 'utf8' }).stdout.trim());
console.log(`\nIndexing ${(size / 1e9).toFixed(2)} GB, ${idx.records.toLocaleString('en')} records (${big})`);
console.log(`rlhf index: ${idx.mb_per_second.toFixed(0)} MB/s, peak memory ${idx.peak_rss_mb.toFixed(0)} MB (index itself ${idx.index_mb.toFixed(0)} MB)`);
console.log(`wc -l:      ${(size / 1e6 / wcSeconds).toFixed(0)} MB/s (${wc.stdout.trim().split(' ')[0]} lines)`);

// Validation: `rlhf validate` on 300 MB of RM records, on both cores, with its peak memory. Two
// shapes: records of about 1 KB, and the example workspace's 360-byte records (per-record work,
// not bytes, bounds the second).
const exampleLines = fs.readFileSync('examples/workspace/data/reviews.rm.jsonl', 'utf8').split('\n').filter(Boolean);
const shapes = {
  '1 KB records': (n) => JSON.stringify({ id: `r${n}`, prompt: `Write review number ${n} of the harbor inn, please.`, responses: Array.from({ length: 4 }, (_, k) => `The harbor inn ${n + k} was lovely, the chowder terrible, the view wonderful. `.repeat(3)), ranks: [1, 2, 3, 4], annotator: `labeler-${n % 17}`, created_at: '2026-11-29T00:00:00.000Z' }),
  'the example records (360 B)': (n) => JSON.stringify({ ...JSON.parse(exampleLines[n % exampleLines.length]), id: `rank-${n}` }),
};
console.log('\nValidating 300 MB RM files (rlhf validate, both cores)');
for (const [name, make] of Object.entries(shapes)) {
  const file = path.join(os.tmpdir(), `rlhf-bench-300mb-${name.split(' ')[0]}.rm.jsonl`);
  if (!fs.existsSync(file) || fs.statSync(file).size < 3e8) {
    const fd = fs.openSync(file, 'w');
    for (let written = 0, n = 0; written < 3e8; ) {
      const lines = [];
      for (let i = 0; i < 5000; i++) lines.push(make(n++));
      const buf = Buffer.from(lines.join('\n') + '\n');
      fs.writeSync(fd, buf);
      written += buf.length;
    }
    fs.closeSync(fd);
  }
  const t0 = performance.now();
  const v = spawnSync('/usr/bin/time', ['-f', '@@%M', process.execPath, 'dist/cli.js', 'validate', file], { encoding: 'utf8' });
  const s = (performance.now() - t0) / 1000;
  const peak = Number(/@@(\d+)/.exec(v.stderr)?.[1] ?? NaN) / 1024;
  console.log(`${name.padEnd(28)} ${(fs.statSync(file).size / 1e6 / s).toFixed(0).padStart(4)} MB/s, ${s.toFixed(2)} s, peak ${peak.toFixed(0)} MB; ${v.stderr.split('\n')[0]}`);
}

// The dashboard's redraw time with 100k points per series (the real webview bundle in chromium).
spawnSync(process.execPath, ['scripts/bench-dashboard.mjs'], { stdio: 'inherit' });
