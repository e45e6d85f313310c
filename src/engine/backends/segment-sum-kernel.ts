/**
 * UnsortedSegmentSum for the wasm backend, which ships without it. The gradient of `gather`
 * (the token-embedding lookup) needs it: d wte[v] = sum of d x[i] over positions i whose token is v.
 * The kernel runs in JavaScript directly on the wasm heap: a single pass, no copies.
 */
import * as tf from '@tensorflow/tfjs-core';

interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

export function unsortedSegmentSumInto(
  x: ArrayLike<number>,
  segmentIds: ArrayLike<number>,
  numSegments: number,
  inner: number,
  out: Float32Array | Int32Array,
): void {
  out.fill(0);
  for (let i = 0; i < segmentIds.length; i++) {
    const s = segmentIds[i];
    if (s < 0 || s >= numSegments) continue; // as TensorFlow: out-of-range ids are dropped
    const src = i * inner;
    const dst = s * inner;
    for (let j = 0; j < inner; j++) out[dst + j] += x[src + j];
  }
}

export function registerWasmSegmentSum(): void {
  if (tf.getKernel('UnsortedSegmentSum', 'wasm')) return;
  tf.registerKernel({
    kernelName: 'UnsortedSegmentSum',
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const { x, segmentIds } = inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
      const numSegments = (attrs as unknown as { numSegments: number }).numSegments;
      const b = backend as unknown as WasmBackendLike;
      const idsRank = segmentIds.shape.length;
      const innerShape = x.shape.slice(idsRank);
      const inner = innerShape.reduce((a, d) => a * d, 1);
      const out = b.makeOutput([numSegments, ...innerShape], x.dtype);
      // Views are taken after makeOutput: allocating may grow (and move) the wasm heap.
      const outArr = b.typedArrayFromHeap(out) as Float32Array | Int32Array;
      const xArr = b.typedArrayFromHeap(x);
      const ids = b.typedArrayFromHeap(segmentIds);
      unsortedSegmentSumInto(xArr, ids, numSegments, inner, outArr);
      return out;
    },
  });
}
