/**
 * Reading tensors back to JavaScript. WebGPU cannot read a buffer synchronously (TensorFlow.js's
 * WebGPU `dataSync` needs a browser's OffscreenCanvas), so the engine reads every value with
 * `await data()`; on the CPU backends that costs nothing more.
 */
import * as tf from '@tensorflow/tfjs-core';
import { webGpuFailure } from './backends/webgpu';

/** The tensor's values as float32; the tensor is disposed. */
export async function take(t: tf.Tensor): Promise<Float32Array> {
  try {
    const failed = webGpuFailure(); // a lost device or a GPU error: stop rather than read garbage
    if (failed) throw new Error(failed);
    const d = await t.data();
    const after = webGpuFailure();
    if (after) throw new Error(after);
    return d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>);
  } finally {
    t.dispose();
  }
}

/** The first value of a tensor (a scalar loss, a norm); the tensor is disposed. */
export async function takeScalar(t: tf.Tensor): Promise<number> {
  return (await take(t))[0];
}

/** Several scalars read in one wait; the tensors are disposed. */
export async function takeScalars(ts: tf.Tensor[]): Promise<number[]> {
  const all = await Promise.all(ts.map((t) => take(t)));
  return all.map((a) => a[0]);
}

/** f over rows [N, T] in chunks of about 8,192 tokens (rows are independent), as one [N * T] array. */
export async function mapRows(ids: Int32Array, N: number, T: number, f: (ids: tf.Tensor2D) => tf.Tensor): Promise<Float32Array> {
  const out = new Float32Array(N * T);
  const rows = Math.max(1, Math.floor(8192 / T));
  for (let n = 0; n < N; n += rows) {
    const m = Math.min(rows, N - n);
    out.set(await take(tf.tidy(() => f(tf.tensor2d(ids.subarray(n * T, (n + m) * T), [m, T], 'int32')))), n * T);
  }
  return out;
}

/** Arrays one after another, as one. */
export function concatArrays(arrays: Float32Array[]): Float32Array {
  const out = new Float32Array(arrays.reduce((a, x) => a + x.length, 0));
  let o = 0;
  for (const a of arrays) {
    out.set(a, o);
    o += a.length;
  }
  return out;
}

/**
 * Each part through `here`, or with `there` (another thread) every other part through it, posted
 * before this thread's part runs; the results in the parts' order.
 */
export async function alternate<P>(parts: P[], here: (p: P) => Promise<Float32Array>, there?: (p: P) => Promise<Float32Array>): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (let k = 0; k < parts.length; k += there ? 2 : 1) {
    const pending = there && k + 1 < parts.length ? there(parts[k + 1]) : undefined;
    out.push(await here(parts[k]));
    if (pending) out.push(await pending);
  }
  return out;
}
