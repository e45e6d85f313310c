/**
 * The fused WebAssembly SIMD kernels (kernels/assembly/fused.ts, built into dist/fused.wasm),
 * registered as TensorFlow.js kernels of the wasm backend. The module is instantiated on the
 * backend's own memory, so a kernel reads its inputs and writes its outputs where the tensors
 * live: one call per op, no copies. src/engine/layers.ts calls these through `fusedOps()` and keeps
 * its unfused versions for the other backends (and for the tests that compare the two).
 */
import * as fs from 'fs';
import * as tf from '@tensorflow/tfjs-core';
import { distFile } from '../paths';

export interface FusedExports {
  layernorm_fwd(x: number, g: number, b: number, y: number, mean: number, rstd: number, rows: number, C: number, eps: number): void;
  rmsnorm_fwd(x: number, g: number, y: number, rstd: number, rows: number, C: number, eps: number): void;
  norm_bwd(x: number, mean: number, rstd: number, g: number, dy: number, dx: number, dg: number, db: number, rows: number, C: number, rms: number): void;
  gelu_fwd(x: number, y: number, n: number): void;
  gelu_bwd(x: number, dy: number, dx: number, n: number): void;
  swiglu_fwd(a: number, b: number, y: number, n: number): void;
  swiglu_bwd(a: number, b: number, dy: number, da: number, db: number, n: number): void;
  bias_add(x: number, b: number, y: number, rows: number, C: number): void;
  col_sum(x: number, out: number, rows: number, C: number): void;
  softmax_fwd(s: number, y: number, rows: number, Tq: number, Tk: number, offset: number, scale: number): void;
  softmax_bwd(y: number, dy: number, ds: number, rows: number, Tk: number, scale: number): void;
  xent_fwd(logits: number, targets: number, w: number, lse: number, n: number, V: number): number;
  xent_bwd(logits: number, lse: number, targets: number, w: number, dy: number, dl: number, n: number, V: number): void;
  sum_squares(g: number, n: number): number;
  transpose2d(x: number, out: number, R: number, C: number): void;
  attn_fwd(q: number, k: number, v: number, qStride: number, kvStride: number, out: number, probs: number,
    B: number, T: number, H: number, KV: number, hd: number, scale: number): void;
  attn_bwd(q: number, k: number, v: number, qStride: number, kvStride: number, probs: number, dout: number,
    dq: number, dk: number, dv: number, dqStride: number, dkvStride: number, scratch: number,
    B: number, T: number, H: number, KV: number, hd: number, scale: number): void;
  matmul(a: number, b: number, c: number, pack: number, nb: number, M: number, K: number, N: number, NC: number, transB: number): void;
  embed(table: number, ids: number, wpe: number, positions: number, x: number, B: number, C: number): void;
  add_to(x: number, y: number, n: number): void;
  matvec(x: number, W: number, bias: number, y: number, B: number, K: number, N: number): void;
  matvec_t(x: number, E: number, y: number, B: number, K: number, N: number): void;
  rope(x: number, cos: number, sin: number, positions: number, B: number, nh: number, hd: number, stride: number): void;
  attend(q: number, k: number, v: number, qStride: number, kvStride: number, kc: number, vc: number, out: number, scores: number,
    B: number, H: number, KV: number, hd: number, positions: number, Nmax: number, scale: number): void;
  adamw(p: number, out: number, g: number, m: number, v: number, n: number, gs: number, lr: number, b1: number, b2: number, c1: number, c2: number, eps: number, decay: number): void;
}

/** What the kernels need of the wasm backend (its tensor table and its Emscripten module). */
interface WasmBackend {
  wasm: { asm: { memory: WebAssembly.Memory } };
  dataIdMap: { get(id: tf.DataId): { memoryOffset: number; refCount: number } | undefined };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
  disposeData(id: tf.DataId): boolean;
}

let instance: { backend: object; k: FusedExports; module: WebAssembly.Module } | undefined;
let disabled = process.env.RLHF_FUSED === '0';

function kernelsFor(backend: WasmBackend): FusedExports {
  if (instance?.backend === backend) return instance.k;
  const file = distFile('fused.wasm');
  if (!file) throw new Error('dist/fused.wasm is missing (npm run build makes it)');
  const mod = new WebAssembly.Module(fs.readFileSync(file));
  const k = new WebAssembly.Instance(mod, { env: { memory: backend.wasm.asm.memory } }).exports as unknown as FusedExports;
  instance = { backend, k, module: mod };
  return k;
}

/** Byte offset of a tensor's values in the wasm heap. */
function ptr(b: WasmBackend, t: tf.TensorInfo): number {
  return b.dataIdMap.get(t.dataId)!.memoryOffset;
}

const size = (shape: number[]) => shape.reduce((a, d) => a * d, 1);

type KernelFn = (k: FusedExports, b: WasmBackend, inputs: tf.TensorInfo[], attrs: Record<string, number>) => tf.TensorInfo | tf.TensorInfo[];

/** Name -> [input names, the kernel]. */
const KERNELS: Record<string, [string[], KernelFn]> = {
  RlhfLayerNorm: [['x', 'g', 'b'], (k, b, [x, g, bias], a) => {
    const [rows, C] = x.shape;
    const y = b.makeOutput(x.shape, 'float32'), mean = b.makeOutput([rows], 'float32'), rstd = b.makeOutput([rows], 'float32');
    k.layernorm_fwd(ptr(b, x), ptr(b, g), ptr(b, bias), ptr(b, y), ptr(b, mean), ptr(b, rstd), rows, C, a.eps);
    return [y, mean, rstd];
  }],
  RlhfRmsNorm: [['x', 'g'], (k, b, [x, g], a) => {
    const [rows, C] = x.shape;
    const y = b.makeOutput(x.shape, 'float32'), rstd = b.makeOutput([rows], 'float32');
    k.rmsnorm_fwd(ptr(b, x), ptr(b, g), ptr(b, y), ptr(b, rstd), rows, C, a.eps);
    return [y, rstd];
  }],
  // mean is ignored when rms = 1 (pass rstd); db is then left unwritten and the caller drops it
  RlhfNormGrad: [['x', 'mean', 'rstd', 'g', 'dy'], (k, b, [x, mean, rstd, g, dy], a) => {
    const [rows, C] = x.shape;
    const dx = b.makeOutput(x.shape, 'float32'), dg = b.makeOutput([C], 'float32'), db = b.makeOutput([C], 'float32');
    k.norm_bwd(ptr(b, x), ptr(b, mean), ptr(b, rstd), ptr(b, g), ptr(b, dy), ptr(b, dx), ptr(b, dg), ptr(b, db), rows, C, a.rms);
    return [dx, dg, db];
  }],
  RlhfGelu: [['x'], (k, b, [x]) => {
    const y = b.makeOutput(x.shape, 'float32');
    k.gelu_fwd(ptr(b, x), ptr(b, y), size(x.shape));
    return y;
  }],
  RlhfGeluGrad: [['x', 'dy'], (k, b, [x, dy]) => {
    const dx = b.makeOutput(x.shape, 'float32');
    k.gelu_bwd(ptr(b, x), ptr(b, dy), ptr(b, dx), size(x.shape));
    return dx;
  }],
  RlhfSwiGlu: [['a', 'b'], (k, b, [x, g]) => {
    const y = b.makeOutput(x.shape, 'float32');
    k.swiglu_fwd(ptr(b, x), ptr(b, g), ptr(b, y), size(x.shape));
    return y;
  }],
  RlhfSwiGluGrad: [['a', 'b', 'dy'], (k, b, [x, g, dy]) => {
    const da = b.makeOutput(x.shape, 'float32'), db = b.makeOutput(x.shape, 'float32');
    k.swiglu_bwd(ptr(b, x), ptr(b, g), ptr(b, dy), ptr(b, da), ptr(b, db), size(x.shape));
    return [da, db];
  }],
  RlhfBiasAdd: [['x', 'b'], (k, b, [x, bias]) => {
    const [rows, C] = x.shape;
    const y = b.makeOutput(x.shape, 'float32');
    k.bias_add(ptr(b, x), ptr(b, bias), ptr(b, y), rows, C);
    return y;
  }],
  RlhfColSum: [['x'], (k, b, [x]) => {
    const [rows, C] = x.shape;
    const out = b.makeOutput([C], 'float32');
    k.col_sum(ptr(b, x), ptr(b, out), rows, C);
    return out;
  }],
  RlhfSoftmax: [['s'], (k, b, [s], a) => {
    const Tk = s.shape[s.shape.length - 1];
    const y = b.makeOutput(s.shape, 'float32');
    k.softmax_fwd(ptr(b, s), ptr(b, y), size(s.shape) / Tk, a.tq, Tk, a.offset, a.scale);
    return y;
  }],
  RlhfSoftmaxGrad: [['y', 'dy'], (k, b, [y, dy], a) => {
    const Tk = y.shape[y.shape.length - 1];
    const ds = b.makeOutput(y.shape, 'float32');
    k.softmax_bwd(ptr(b, y), ptr(b, dy), ptr(b, ds), size(y.shape) / Tk, Tk, a.scale);
    return ds;
  }],
  RlhfXent: [['logits', 'targets', 'w'], (k, b, [l, t, w]) => {
    const [n, V] = l.shape;
    const loss = b.makeOutput([], 'float32'), lse = b.makeOutput([n], 'float32');
    const value = k.xent_fwd(ptr(b, l), ptr(b, t), ptr(b, w), ptr(b, lse), n, V);
    b.typedArrayFromHeap(loss)[0] = value;
    return [loss, lse];
  }],
  RlhfTranspose: [['x'], (k, b, [x]) => {
    const [R, C] = x.shape;
    const out = b.makeOutput([C, R], x.dtype);
    k.transpose2d(ptr(b, x), ptr(b, out), R, C);
    return out;
  }],
  // a [M, K] @ b [K, N] (b given as [N, K] with transB), or the same with a batch dimension in
  // front; b's columns are packed 256 at a time (a block of K x 256 stays in the 1 MB L2 for K up to
  // 1024) into a scratch buffer
  RlhfMatMul: [['a', 'b'], (k, b, [x, w], a) => {
    const batched = x.shape.length === 3, nb = batched ? x.shape[0] : 1;
    const [M, K] = x.shape.slice(-2), N = w.shape[w.shape.length - (a.transB ? 2 : 1)];
    const out = b.makeOutput(batched ? [nb, M, N] : [M, N], 'float32');
    const NC = Math.min(256, Math.ceil(N / 16) * 16);
    const pack = b.makeOutput([K * NC], 'float32');
    k.matmul(ptr(b, x), ptr(b, w), ptr(b, out), ptr(b, pack), nb, M, K, N, NC, a.transB ? 1 : 0);
    b.disposeData(pack.dataId);
    return out;
  }],
  // Causal self-attention without a cache: q, k, v are rows of [B T, *] with the strides and float
  // offsets in attrs (GPT-2 gives its fused qkv three times); out [B T, H hd] and P [B, H, T, T]
  RlhfAttention: [['q', 'k', 'v'], (k, b, [q, kk, v], a) => {
    const out = b.makeOutput([a.B * a.T, a.H * a.hd], 'float32'), probs = b.makeOutput([a.B, a.H, a.T, a.T], 'float32');
    k.attn_fwd(ptr(b, q) + 4 * a.qOff, ptr(b, kk) + 4 * a.kOff, ptr(b, v) + 4 * a.vOff, a.qStride, a.kvStride, ptr(b, out), ptr(b, probs),
      a.B, a.T, a.H, a.KV, a.hd, a.scale);
    return [out, probs];
  }],
  // its gradients: one [B T, qStride] tensor for a packed qkv (attrs.packed), else dq, dk, dv
  RlhfAttentionGrad: [['q', 'k', 'v', 'probs', 'dy'], (k, b, [q, kk, v, probs, dy], a) => {
    const rows = a.B * a.T;
    const outs = a.packed ? [b.makeOutput([rows, a.qStride], 'float32')] : [b.makeOutput([rows, a.H * a.hd], 'float32'), b.makeOutput([rows, a.KV * a.hd], 'float32'), b.makeOutput([rows, a.KV * a.hd], 'float32')];
    const [dq, dk, dv] = a.packed ? [ptr(b, outs[0]) + 4 * a.qOff, ptr(b, outs[0]) + 4 * a.kOff, ptr(b, outs[0]) + 4 * a.vOff] : outs.map((o) => ptr(b, o));
    const scratch = b.makeOutput([a.T, a.T], 'float32');
    k.attn_bwd(ptr(b, q) + 4 * a.qOff, ptr(b, kk) + 4 * a.kOff, ptr(b, v) + 4 * a.vOff, a.qStride, a.kvStride, ptr(b, probs), ptr(b, dy),
      dq, dk, dv, a.packed ? a.qStride : a.H * a.hd, a.packed ? a.qStride : a.KV * a.hd, ptr(b, scratch), a.B, a.T, a.H, a.KV, a.hd, a.scale);
    b.disposeData(scratch.dataId);
    return outs.length === 1 ? outs[0] : outs;
  }],
  RlhfAdamW: [['p', 'g', 'm', 'v'], (k, b, [p, g, m, v], a) => {
    const out = b.makeOutput(p.shape, 'float32');
    k.adamw(ptr(b, p), ptr(b, out), ptr(b, g), ptr(b, m), ptr(b, v), size(p.shape), a.gradScale, a.lr, a.beta1, a.beta2, a.c1, a.c2, a.eps, a.decay);
    return out;
  }],
  RlhfXentGrad: [['logits', 'lse', 'targets', 'w', 'dy'], (k, b, [l, lse, t, w, dy]) => {
    const [n, V] = l.shape;
    const dl = b.makeOutput(l.shape, 'float32');
    k.xent_bwd(ptr(b, l), ptr(b, lse), ptr(b, t), ptr(b, w), b.typedArrayFromHeap(dy)[0], ptr(b, dl), n, V);
    return dl;
  }],
};

/**
 * The wasm backend's Identity copies the tensor's values; the engine calls it for every tensor a
 * gradient saves (tf.customGrad's save, a kernel's saved inputs: 160 copies in a step of nanoGPT's
 * shape, 3-4 ms). Tensors are immutable, so the copy may share the values, as the cpu backend's
 * Identity and the wasm backend's own Reshape do (the buffer is counted and freed with its last
 * tensor). The in-place updates here (AdamW's moments) only write a buffer no other tensor holds.
 */
function registerSharedIdentity(): void {
  const current = tf.getKernel('Identity', 'wasm');
  if (!current || (current.kernelFunc as { shared?: boolean }).shared) return;
  const kernelFunc = Object.assign(({ inputs, backend }: { inputs: tf.NamedTensorInfoMap; backend: unknown }) => {
    const x = inputs.x!;
    if (x.dtype === 'string') return (current.kernelFunc as (a: unknown) => tf.TensorInfo)({ inputs, backend, attrs: {} });
    (backend as { incRef(id: tf.DataId): void }).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  }, { shared: true });
  tf.unregisterKernel('Identity', 'wasm');
  tf.registerKernel({ ...current, kernelFunc: kernelFunc as unknown as tf.KernelFunc });
}

/**
 * The wasm backend's GatherV2 computes every element's source through generic strides: 2.9 ms to
 * look up 768 rows of a [65, 128] embedding (a step of nanoGPT's shape). Along axis 0 (every
 * gather here: embeddings, rows of rewards and log-probabilities) a gather is a copy of whole rows,
 * which `embed` does; anything else goes to the backend's own kernel.
 */
function registerRowGather(): void {
  const current = tf.getKernel('GatherV2', 'wasm');
  if (!current || (current.kernelFunc as { rows?: boolean }).rows) return;
  const kernelFunc = Object.assign((args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }) => {
    const { x, indices } = args.inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
    const { axis, batchDims } = (args.attrs ?? {}) as unknown as { axis: number; batchDims: number };
    const rows = x.shape[0];
    if ((axis !== 0 && axis !== -x.shape.length) || batchDims || x.shape.length === 0 || (x.dtype !== 'float32' && x.dtype !== 'int32') || indices.dtype !== 'int32') {
      return (current.kernelFunc as (a: unknown) => tf.TensorInfo)(args);
    }
    const b = args.backend as unknown as WasmBackend;
    const ids = b.typedArrayFromHeap(indices) as unknown as Int32Array;
    for (let i = 0; i < ids.length; i++) {
      if (!(ids[i] >= 0 && ids[i] < rows)) throw new Error(`GatherV2: the index value ${ids[i]} is not in [0, ${rows - 1}]`);
    }
    const out = b.makeOutput([...indices.shape, ...x.shape.slice(1)], x.dtype);
    const inner = size(x.shape) / Math.max(rows, 1);
    if (ids.length && inner) kernelsFor(b).embed(ptr(b, x), ptr(b, indices), 0, 0, ptr(b, out), ids.length, inner);
    return out;
  }, { rows: true });
  // the backend's kernel binds its wasm function in its setupFunc: kept, for the cases it still serves
  tf.unregisterKernel('GatherV2', 'wasm');
  tf.registerKernel({ ...current, kernelFunc: kernelFunc as unknown as tf.KernelFunc });
}

/** Registers the kernels with the wasm backend (once per process). */
export function registerFusedKernels(): void {
  registerSharedIdentity();
  registerRowGather();
  for (const [name, [names, fn]] of Object.entries(KERNELS)) {
    if (tf.getKernel(name, 'wasm')) continue;
    tf.registerKernel({
      kernelName: name,
      backendName: 'wasm',
      kernelFunc: ({ inputs, attrs, backend }) => {
        const b = backend as unknown as WasmBackend;
        const ins = names.map((n) => (inputs as Record<string, tf.TensorInfo>)[n]);
        return fn(kernelsFor(b), b, ins, (attrs ?? {}) as unknown as Record<string, number>);
      },
    });
  }
}

/** Whether the current backend runs the fused kernels (wasm, built, not switched off). */
export function fusedAvailable(): boolean {
  if (disabled || tf.getBackend() !== 'wasm' || !tf.getKernel('RlhfGelu', 'wasm')) return false;
  try {
    kernelsFor(tf.backend() as unknown as WasmBackend);
    return true;
  } catch {
    return false;
  }
}

/** Switches the fused kernels off (or back on) in this process: the tests compare both paths. */
export function setFused(on: boolean): void {
  disabled = !on;
}

/** Runs a registered fused kernel; several outputs come back as an array. */
export function runFused(name: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, number> = {}): tf.Tensor | tf.Tensor[] {
  return tf.engine().runKernel(name, inputs as unknown as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap) as tf.Tensor | tf.Tensor[];
}

/**
 * a [m, k] @ b [k, n] (or batched: [n, m, k] @ [n, k, n']) with no gradient: the SIMD kernel where
 * the fused kernels serve, tf.matMul elsewhere (the same bits either way on wasm).
 */
export function product<T extends tf.Tensor2D | tf.Tensor3D>(a: T, b: T): T {
  if (fusedAvailable() && a.dtype === 'float32' && b.dtype === 'float32') return runFused('RlhfMatMul', { a, b }) as T;
  return tf.matMul(a, b) as T;
}

/** a [m, k] @ b^T for b [n, k] (a weight's transpose in a backward pass): no transposed copy of b on wasm. */
export function productTransB(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  if (fusedAvailable() && a.dtype === 'float32' && b.dtype === 'float32') return runFused('RlhfMatMul', { a, b }, { transB: 1 }) as tf.Tensor2D;
  return tf.matMul(a, tf.transpose(b));
}

/**
 * The update kernels, outside the tape: the sum of squares of a tensor (read synchronously), and
 * AdamW: new weights assigned to the parameter, its moments updated in place (only where nothing
 * else shares their memory, refCount 1; otherwise false and the caller takes the unfused path).
 */
export function fusedSumSquares(t: tf.Tensor): number | undefined {
  if (!fusedAvailable() || t.dtype !== 'float32') return undefined;
  const b = tf.backend() as unknown as WasmBackend;
  return kernelsFor(b).sum_squares(ptr(b, t), t.size);
}

export function fusedAdamW(
  p: tf.Variable, g: tf.Tensor, m: tf.Variable, v: tf.Variable,
  h: { gradScale: number; lr: number; beta1: number; beta2: number; c1: number; c2: number; eps: number; decay: number },
): boolean {
  if (!fusedAvailable()) return false;
  const b = tf.backend() as unknown as WasmBackend;
  const owned = (t: tf.Tensor) => b.dataIdMap.get(t.dataId)?.refCount === 1;
  if (!owned(m) || !owned(v) || g.dtype !== 'float32') return false;
  const next = tf.engine().runKernel('RlhfAdamW', { p, g, m, v } as unknown as tf.NamedTensorMap, h as unknown as tf.NamedAttrMap) as tf.Tensor;
  p.assign(next);
  next.dispose();
  return true;
}

/**
 * The kernels themselves and a tensor's heap address, for code that calls several kernels in a row
 * with no op in between (decode.ts). Undefined when the fused kernels do not serve this backend.
 * Addresses stay valid while the tensor lives (the heap may grow, offsets do not move).
 */
export function fusedKernels(): { k: FusedExports; ptr: (t: tf.Tensor) => number; heap: () => Float32Array; zeros: (shape: number[], dtype?: 'float32' | 'int32') => tf.Tensor; module: WebAssembly.Module } | undefined {
  if (!fusedAvailable()) return undefined;
  const b = tf.backend() as unknown as WasmBackend;
  const heap = () => new Float32Array(b.wasm.asm.memory.buffer);
  // a tensor of zeros made on the heap: tf.zeros fills a JavaScript array and copies it in (about
  // 2 ms for a decoder's 0.5 MB cache of one layer, 15 ms of a 16-sequence generation's 70)
  const zeros = (shape: number[], dtype: 'float32' | 'int32' = 'float32') => {
    const t = tf.engine().makeTensorFromTensorInfo(b.makeOutput(shape, dtype));
    const at = ptr(b, t) >> 2;
    heap().fill(0, at, at + t.size);
    return t;
  };
  const k = kernelsFor(b);
  // the compiled module too: a decoding thread instantiates it on a heap of its own (decode.ts)
  return { k, ptr: (t) => ptr(b, t), heap, zeros, module: instance!.module };
}
