#!/usr/bin/env bash
# Checks the GPU backends on this machine's GPU in a few minutes and prints one JSON line:
# backend detection, parity with WebAssembly (logprobs, loss, gradients), and training throughput at
# GPT-2 124M's shape (12 layers, 12 heads, 768 wide, block 1024, batch 8), with the bench's own
# overhead (first steps: shader compilation, uploads) apart from the steady state.
#
#   scripts/gpu-check.sh [--peak-tflops X] [--steps N]
#
# X is the GPU's peak fp32 TFLOP/s (e.g. 67 for an H100 SXM): the line then has the fraction of it
# reached. Runs WebGPU always, and CUDA when @tensorflow/tfjs-node-gpu is installed. On a software
# adapter (llvmpipe, SwiftShader) it is flagged and the bench runs at nanoGPT's small CPU shape
# instead: GPT-2's shape would take hours there. SmolLM2-135M's shape needs the Llama family in the
# engine and is reported as not run until then.
set -euo pipefail
cd "$(dirname "$0")/.."
PEAK=""
STEPS=5
while [ $# -gt 0 ]; do
  case "$1" in
    --peak-tflops) PEAK="$2"; shift 2 ;;
    --steps) STEPS="$2"; shift 2 ;;
    *) echo "gpu-check: unknown option $1 (--peak-tflops X, --steps N)" >&2; exit 2 ;;
  esac
done
[ -f dist/cli.js ] || node scripts/build.mjs
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
cli() { node dist/cli.js "$@" 2>>"$OUT/stderr.log"; }
START=$(date +%s)

cli backends --json >"$OUT/backends.json"
BACKENDS=$(node -e 'const r=require(process.argv[1]); console.log(r.backends.filter(b=>b.available&&(b.name==="webgpu"||b.name==="gpu")).map(b=>b.name).join(" "))' "$OUT/backends.json")

for B in $BACKENDS; do
  cli bench parity --backend "$B" --json >"$OUT/parity-$B.json" || true
  SOFT=$(node -e 'const r=require(process.argv[1]); const b=r.backends.find(x=>x.name===process.argv[2]); console.log(b.adapter&&b.adapter.software?1:0)' "$OUT/backends.json" "$B")
  if [ "$SOFT" = 1 ]; then
    SHAPE=(--layers 4 --heads 4 --embd 128 --block 64 --batch 12 --vocab 65)
    echo "nanoGPT's CPU shape (4 layers, 128 wide, block 64, batch 12): a software adapter" >"$OUT/shape-$B.txt"
    cli bench train --backend wasm "${SHAPE[@]}" --steps "$STEPS" --json >"$OUT/wasm-$B.json" || echo '{}' >"$OUT/wasm-$B.json"
    # GPT-2's shape all the same: on an adapter with a small binding limit it is refused in one line
    cli bench train --backend "$B" --layers 12 --heads 12 --embd 768 --block 1024 --batch 8 --vocab 50257 --steps 1 --json >/dev/null \
      && echo '"ran"' >"$OUT/gpt2-$B.json" || tail -n 1 "$OUT/stderr.log" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.stringify(s.trim())))' >"$OUT/gpt2-$B.json"
  else
    SHAPE=(--layers 12 --heads 12 --embd 768 --block 1024 --batch 8 --vocab 50257)
    echo "GPT-2 124M" >"$OUT/shape-$B.txt"
    echo '{}' >"$OUT/wasm-$B.json"
  fi
  cli bench train --backend "$B" "${SHAPE[@]}" --steps "$STEPS" ${PEAK:+--peak-tflops "$PEAK"} --json >"$OUT/train-$B.json" \
    || { tail -n 1 "$OUT/stderr.log" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.stringify({error:s.trim()})))' >"$OUT/train-$B.json"; }
done

node - "$OUT" "$BACKENDS" "$(( $(date +%s) - START ))" <<'EOF'
const fs = require('fs'), path = require('path');
const [dir, names, seconds] = process.argv.slice(2);
const read = (f) => { try { return JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')); } catch { return undefined; } };
const backends = read('backends.json');
const line = { check: 'rlhf gpu-check', seconds: Number(seconds), auto: backends.auto, backends: {} };
for (const b of backends.backends) line.backends[b.name] = b.available ? { available: true, ...(b.adapter ? { adapter: `${b.adapter.vendor} ${b.adapter.architecture} (${b.adapter.description})`, software: b.adapter.software, limits: b.limits } : {}), ...(b.auto_skips ? { auto_skips: b.auto_skips } : {}) } : { available: false, why: b.why };
for (const name of names.split(' ').filter(Boolean)) {
  const p = read(`parity-${name}.json`) ?? {}, t = read(`train-${name}.json`) ?? {}, w = read(`wasm-${name}.json`) ?? {};
  line[name] = {
    parity: { max_logprob_diff: p.max_logprob_diff, loss_rel_diff: p.loss_rel_diff, grad_rel_diff: p.grad_rel_diff, ok: p.parity },
    train: t.error ? { shape: fs.readFileSync(path.join(dir, `shape-${name}.txt`), 'utf8').trim(), error: t.error } : {
      shape: fs.readFileSync(path.join(dir, `shape-${name}.txt`), 'utf8').trim(),
      tokens_per_second: t.tokens_per_second, model_tflops: t.model_flops_per_second / 1e12, ...(t.fraction_of_peak !== undefined ? { fraction_of_peak: t.fraction_of_peak } : {}),
      ms_per_step: t.ms_per_step, first_step_seconds: t.first_step_seconds, second_step_seconds: t.second_step_seconds,
      gpu_bytes_flat: t.bytes_after_step_1 === t.bytes_after_last_step, tensors_flat: t.tensors_after_step_1 === t.tensors_after_last_step,
      ...(w.tokens_per_second ? { wasm_tokens_per_second_same_shape: w.tokens_per_second } : {}),
    },
    ...(read(`gpt2-${name}.json`) !== undefined ? { gpt2_124m_on_this_adapter: read(`gpt2-${name}.json`) } : {}),
    smollm2_135m: 'not run: the Llama family is not in the engine yet',
  };
}
console.log(JSON.stringify(line));
EOF
