// `npm run bench`: our engine and PyTorch side by side, in one run on this machine. Training
// tokens/s at nanoGPT's documented CPU configuration (n_layer 4, n_head 4, n_embd 128, block 64,
// batch 12, vocab 65) on every backend that starts here, with the fused wasm kernels on and off;
// at SmolLM2-135M's shape; generation tokens/s with the key/value cache at batch 1 and 16; the
// kernels alone (scripts/bench-kernels.ts); a PPO iteration of the demo split into rollout and update. PyTorch runs the same shapes
// (scripts/bench_torch_gpt2.py, bench_torch_llama.py) when a python3 with torch is found, at one
// and at two threads (on two cores one thread is often its faster setting); the ratio is against
// its faster one. Each engine runs in its own process. Not a test: it prints figures.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const cli = (args, env = {}) => {
  const r = spawnSync(process.execPath, ['dist/cli.js', ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  const line = r.stdout.trim().split('\n').at(-1);
  if (r.status !== 0 || !line) return { note: (r.stderr.trim().split('\n').at(-1) ?? '').replace(/^rlhf [a-z]+: /, '').split(';')[0] };
  return JSON.parse(line);
};
const python = ['python3', '/usr/bin/python3'].find((p) => spawnSync(p, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0);
const torch = (script, args) => {
  if (!python) return undefined;
  const runs = [1, 2].map((threads) => {
    const r = spawnSync(python, [`scripts/${script}`, ...args, '--threads', String(threads)], { encoding: 'utf8' });
    return r.status === 0 ? JSON.parse(r.stdout.trim().split('\n').at(-1)) : undefined;
  }).filter(Boolean);
  return runs.length ? runs : undefined;
};
const best = (runs, key) => runs.reduce((a, b) => (b[key] > a[key] ? b : a));
const fmt = (x) => x.toFixed(0).padStart(8);
const ratio = (ours, theirs) => `${(ours / theirs).toFixed(2)}x`;
// which BLAS PyTorch's products run on, read from the libraries the process mapped: Debian's torch
// links the libblas.so.3 alternative, the reference BLAS (several times slower) unless OpenBLAS is installed
const torchBlas = "import torch; torch.randn(64, 64) @ torch.randn(64, 64); print(next((l.split()[-1] for l in open('/proc/self/maps') if 'blas' in l), 'unknown'))";
const blas = python ? spawnSync(python, ['-c', torchBlas], { encoding: 'utf8' }).stdout.trim() : '';
console.log(python ? `PyTorch: ${spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' }).stdout.trim()} (${python}; BLAS ${blas}${/openblas|mkl/i.test(blas) ? '' : ': the reference BLAS, not an optimised one; PyTorch\'s figures below are far under its real speed (apt-get install libopenblas0-pthread)'})` : 'PyTorch: not found (python3 with torch); our figures only');

const shape = ['--layers', '4', '--heads', '4', '--embd', '128', '--block', '64', '--batch', '12', '--vocab', '65'];
console.log('\nTraining, nanoGPT CPU configuration (4 layers, 4 heads, 128 wide, block 64, batch 12, vocab 65)');
console.log('engine                               tokens/s  ms/step  tensors after step 1 / last');
const ptTrain = torch('bench_torch_gpt2.py', []);
let oursTrain;
for (const [backend, fused] of [['gpu', '1'], ['node', '1'], ['wasm', '1'], ['wasm', '0'], ['cpu', '1']]) {
  const r = cli(['bench', 'train', ...shape, '--steps', backend === 'cpu' ? '3' : '30', '--backend', backend, '--json'], { RLHF_FUSED: fused });
  const name = `${backend}${backend === 'wasm' ? (fused === '1' ? ', fused kernels' : ', unfused ops') : ''}`.padEnd(36);
  if (r.note) console.log(`${name} unavailable: ${r.note}`);
  else {
    if (backend === 'wasm' && fused === '1') oursTrain = r;
    console.log(`${name} ${fmt(r.tokens_per_second)} ${r.ms_per_step.toFixed(0).padStart(8)}  ${r.tensors_after_step_1} / ${r.tensors_after_last_step}  (${r.threads} threads)`);
  }
}
for (const t of ptTrain ?? []) console.log(`${`PyTorch ${t.torch}, ${t.threads} thread${t.threads > 1 ? 's' : ''}`.padEnd(36)} ${fmt(t.tokens_per_second)} ${t.ms_per_step.toFixed(0).padStart(8)}`);
if (ptTrain && oursTrain) console.log(`ours / PyTorch's faster: ${ratio(oursTrain.tokens_per_second, best(ptTrain, 'tokens_per_second').tokens_per_second)}`);

console.log('\nGeneration with the key/value cache, same model (tokens/s of all sequences together)');
const ptGen = torch('bench_torch_gpt2.py', ['--steps', '1']);
for (const samples of [1, 16]) {
  // the fused decoder as it runs (a batch's sequences split over both cores), on one thread, and the op path
  const on = cli(['bench', 'generate', ...shape, '--samples', String(samples), '--backend', 'wasm', '--json']);
  const one = samples > 1 ? cli(['bench', 'generate', ...shape, '--samples', String(samples), '--threads', '1', '--backend', 'wasm', '--json']) : undefined;
  const off = cli(['bench', 'generate', ...shape, '--samples', String(samples), '--backend', 'wasm', '--json'], { RLHF_FUSED: '0' });
  const key = samples === 1 ? 'generate_batch1_tokens_per_second' : 'generate_batch16_tokens_per_second';
  const pt = ptGen ? best(ptGen, key) : undefined;
  console.log(`batch ${String(samples).padStart(2)}: fused decoder ${fmt(on.cached_tokens_per_second)} (${on.decode_threads} thread${on.decode_threads > 1 ? 's' : ''}${one ? `; ${fmt(one.cached_tokens_per_second).trim()} on 1` : ''}), unfused ops ${fmt(off.cached_tokens_per_second)} (${ratio(on.cached_tokens_per_second, off.cached_tokens_per_second)})` +
    (pt ? `, PyTorch ${fmt(pt[key])} (${pt.threads} thread${pt.threads > 1 ? 's' : ''}); ours / PyTorch ${ratio(on.cached_tokens_per_second, pt[key])}` : '') +
    `; same tokens as without the cache: ${on.cached_equals_uncached}`);
}

// the kernels one at a time (scripts/bench-kernels.ts): the decoder's product, a steady-state step
// on one thread and on two, GELU, the cross-entropy at SmolLM2's vocabulary
console.log('\nKernels, one at a time (the fastest of several repeats)');
{
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/bench-kernels.ts'], { encoding: 'utf8' });
  console.log(r.status === 0 ? r.stdout.trimEnd() : `unavailable: ${r.stderr.trim().split('\n').at(-1)}`);
}

const smol = ['--arch', 'llama', '--layers', '30', '--embd', '576', '--heads', '9', '--kv-heads', '3', '--ffn', '1536', '--vocab', '49152', '--block', '256'];
// full fine-tuning at this shape does not fit the wasm heap (refused in one line): LoRA r=16, as a user would
console.log("\nSmolLM2-135M's shape (30 layers, 576 wide, 9 heads / 3 key-value heads, SwiGLU 1536, vocab 49152), block 256, batch 4, LoRA r=16");
const ptSmol = torch('bench_torch_llama.py', ['--steps', '2', '--tokens', '1', '--lora-r', '16']);
const ptSmolGen = torch('bench_torch_llama.py', ['--steps', '1', '--tokens', '32']); // generation of the base model (after 3 training steps)
const smolTrain = cli(['bench', 'train', ...smol, '--batch', '4', '--steps', '2', '--lora-r', '16', '--backend', 'wasm', '--json']);
const smolGen = cli(['bench', 'generate', ...smol, '--tokens', '32', '--backend', 'wasm', '--json']);
if (smolTrain.note) console.log(`training: unavailable: ${smolTrain.note}`);
else {
  const pt = ptSmol && best(ptSmol, 'tokens_per_second');
  console.log(`training:   ours ${fmt(smolTrain.tokens_per_second)} tokens/s` + (pt ? `, PyTorch ${fmt(pt.tokens_per_second)} (${pt.threads} thread${pt.threads > 1 ? 's' : ''}); ${ratio(smolTrain.tokens_per_second, pt.tokens_per_second)}` : ''));
}
if (!smolGen.note) {
  const pt = ptSmolGen && best(ptSmolGen, 'generate_cached_tokens_per_second');
  console.log(`generation: ours ${fmt(smolGen.cached_tokens_per_second)} tokens/s at batch 1 (the base model)` + (pt ? `, PyTorch ${fmt(pt.generate_cached_tokens_per_second)} (${pt.threads} thread${pt.threads > 1 ? 's' : ''}); ${ratio(smolGen.cached_tokens_per_second, pt.generate_cached_tokens_per_second)}` : ''));
}

// A PPO iteration of the demo: its SFT and reward models (one pipeline run), then 5 PPO iterations
// each way: as it runs now (fused kernels, the critic and the reward model on a second thread), on
// one thread, and with neither (RLHF_FUSED=0 --threads 1: the engine before the fused kernels,
// batched decoding and the second thread). The figures come from the runs' own metrics.
console.log('\nA PPO iteration of the demo (mean of iterations 2-5): rollout = sampling the 16 responses; update = scoring them (policy, reference, reward and value models) and the PPO epochs');
{
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'rlhf-bench-ppo-'));
  const base = spawnSync(process.execPath, ['dist/cli.js', 'pipeline', '--out', out, '--algos', 'ppo', '--ppo-iterations', '1', '--eval-prompts', '1', '--backend', 'wasm'], { encoding: 'utf8' });
  if (base.status !== 0) console.log(`the pipeline failed: ${base.stderr.trim().split('\n').at(-1)}`);
  else {
    const ways = [['fused kernels, 2 threads', '1', '2'], ['fused kernels, 1 thread', '1', '1'], ['unfused ops, 1 thread', '0', '1']];
    const seconds = {};
    for (const [label, fused, threads] of ways) {
      const id = `ppo-${fused}-${threads}`;
      const r = spawnSync(process.execPath, ['dist/cli.js', 'ppo', '--prompts', path.join('examples', 'workspace', 'data', 'reviews.ppo.jsonl'), '--policy', path.join(out, 'runs', 'sft', 'checkpoints', 'final'),
        '--reward-model', path.join(out, 'runs', 'rm', 'checkpoints', 'final'), '--iterations', '5', '--threads', threads, '--runs-dir', out, '--run-id', id, '--backend', 'wasm'], { encoding: 'utf8', env: { ...process.env, RLHF_FUSED: fused } });
      const file = path.join(out, id, 'metrics.jsonl');
      if (r.status !== 0 || !fs.existsSync(file)) {
        console.log(`${label}: the run failed: ${r.stderr.trim().split('\n').at(-1)}`);
        continue;
      }
      const rows = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).slice(1);
      const avg = (k) => rows.reduce((a, m) => a + m[k], 0) / rows.length;
      const it = (seconds[label] = avg('iteration_seconds')), gen = avg('generation_seconds');
      const vsOld = seconds['unfused ops, 1 thread'];
      console.log(`${label.padEnd(26)} ${it.toFixed(2)} s per iteration: rollout ${gen.toFixed(2)} s, update ${(it - gen).toFixed(2)} s`);
      if (vsOld && label === 'unfused ops, 1 thread') {
        for (const [l] of ways.slice(0, 2)) if (seconds[l]) console.log(`  ${l}: ${(vsOld / seconds[l]).toFixed(2)}x faster than unfused on 1 thread`);
      }
    }
  }
  fs.rmSync(out, { recursive: true, force: true });
}

// Dataset indexing: a generated 1 GB RM file (about 1M K-way records), beside `wc -l` on it.
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
