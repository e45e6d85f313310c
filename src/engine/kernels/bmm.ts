/**
 * Batched matrix products for attention through our own WebAssembly SIMD kernel (bmm.wat,
 * assembled into dist/bmm.wasm by the build). TensorFlow.js's wasm backend sends batched
 * products down a scalar loop (about 2 GFLOP/s here) and only unbatched ones to XNNPACK; this
 * kernel does about 14 GFLOP/s on attention's shapes. Inputs are copied into the kernel's own
 * memory and the result back (a few hundred kB, well under the cost of the product).
 * Without the kernel (or on a native backend) it falls back to tf.matMul. Where the fused kernels
 * serve (wasm), their product runs instead: on the backend's own heap, no copies, about 50 GFLOP/s.
 */
import * as fs from 'fs';
import * as tf from '@tensorflow/tfjs-core';
import { distFile } from '../paths';
import { fusedAvailable, product as fusedProduct } from './fused';

interface Kernel {
  memory: WebAssembly.Memory;
  bmm: (a: number, b: number, c: number, nb: number, M: number, K: number, N: number) => void;
}

let kernel: Kernel | null | undefined;

function load(): Kernel | null {
  if (kernel !== undefined) return kernel;
  const file = distFile('bmm.wasm');
  try {
    kernel = file ? (new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(file))).exports as unknown as Kernel) : null;
  } catch {
    kernel = null;
  }
  return kernel;
}

/** Whether the SIMD kernel serves the current backend (the CPU ones; native backends are faster alone). */
export function simdBmmAvailable(): boolean {
  const b = tf.getBackend();
  return (b === 'wasm' || b === 'cpu') && load() !== null;
}

/** The tensor's values without a copy where the backend allows it. */
function view(t: tf.Tensor): Float32Array {
  const backend = tf.backend() as unknown as { typedArrayFromHeap?: (t: tf.TensorInfo) => Float32Array };
  return backend.typedArrayFromHeap ? backend.typedArrayFromHeap(t) : (t.dataSync() as Float32Array);
}

function run(a: tf.Tensor3D, b: tf.Tensor3D): tf.Tensor3D {
  const k = load()!;
  const [nb, M, K] = a.shape;
  const N = b.shape[2];
  const aLen = nb * M * K, bLen = nb * K * N, cLen = nb * M * N;
  const bytes = 4 * (aLen + bLen + cLen);
  const have = k.memory.buffer.byteLength;
  if (bytes > have) k.memory.grow(Math.ceil((bytes - have) / 65536));
  const heap = new Float32Array(k.memory.buffer);
  heap.set(view(a), 0);
  heap.set(view(b), aLen);
  k.bmm(0, 4 * aLen, 4 * (aLen + bLen), nb, M, K, N);
  return tf.tensor3d(heap.subarray(aLen + bLen, aLen + bLen + cLen), [nb, M, N]);
}

function product(a: tf.Tensor3D, b: tf.Tensor3D): tf.Tensor3D {
  if (fusedAvailable()) return fusedProduct(a, b);
  return simdBmmAvailable() ? run(a, b) : tf.matMul(a, b);
}

/** a [n, M, K] @ b [n, K, N]; the backward pass is two more untransposed products. */
export const bmm = tf.customGrad(((a: tf.Tensor3D, b: tf.Tensor3D, save: tf.GradSaveFunc) => {
  save([a, b]);
  return {
    value: product(a, b),
    gradFunc: (dy: tf.Tensor3D, saved: tf.Tensor[]) => {
      const [sa, sb] = saved as tf.Tensor3D[];
      return [product(dy, tf.transpose(sb, [0, 2, 1])), product(tf.transpose(sa, [0, 2, 1]), dy)];
    },
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (a: tf.Tensor3D, b: tf.Tensor3D) => tf.Tensor3D;
