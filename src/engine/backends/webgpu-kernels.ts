/**
 * WebGPU kernels that make training on the GPU reproducible (the same run gives the same bytes, so a
 * resumed run equals an uninterrupted one, as on the CPU).
 *
 * TensorFlow.js's WebGPU backend sums floats with atomic compare-exchange loops in two places: the
 * gradient of `gather` (UnsortedSegmentSum: the token-embedding gradient) and the split-K matrix
 * product it picks for skinny outputs with a long inner dimension (a reward head's gradient). The
 * order of those additions depends on thread scheduling, so two identical runs drift apart in the
 * last bits, then further. Here:
 *  - UnsortedSegmentSum is replaced by two passes without atomics. Pass 1, a thread per segment v,
 *    counts the ids below v (its start) and equal to v (its length) and writes, in ascending order,
 *    the rows whose id is v into its own slice of an index list. Pass 2, a thread per output value
 *    (v, j), adds x[row, j] over v's rows in that order: the CPU kernel's order, so the sums are the
 *    same floats as WebAssembly's. Pass 1 reads the ids V times (V x N comparisons), which a GPU does
 *    in well under a millisecond at GPT-2's vocabulary and a batch of 8 x 1024 tokens.
 *  - the split-K product is never chosen (the tiled product is used instead).
 */
import * as tf from '@tensorflow/tfjs-core';

interface Program {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  variableNames: string[];
  uniforms: string;
  workgroupSize: [number, number, number];
  getUserCode(): string;
}

interface WebGpuBackendLike {
  runWebGPUProgram(p: Program, inputs: tf.TensorInfo[], dtype: tf.DataType, uniforms: { type: string; data: number[] }[]): tf.TensorInfo;
  disposeData(id: object): void;
}

const WG = 64;

function flat(shapeKey: string, outputShape: number[], threads: number, uniforms: string, variableNames: string[], code: string): Program {
  return {
    outputShape,
    shaderKey: shapeKey,
    dispatchLayout: { x: outputShape.map((_, i) => i) },
    dispatch: [Math.ceil(threads / WG), 1, 1],
    variableNames,
    uniforms,
    workgroupSize: [WG, 1, 1],
    getUserCode: () => code,
  };
}

const ORDER_CODE = `
  fn main(index : i32) {
    let v = index;
    if (v >= uniforms.numSegments) { return; }
    var before = 0;
    var count = 0;
    for (var i = 0; i < uniforms.n; i++) {
      let s = i32(segmentIds[i]);
      if (s >= 0 && s < v) { before++; }
      if (s == v) { count++; }
    }
    result[uniforms.n + v] = before;
    result[uniforms.n + uniforms.numSegments + v] = count;
    var k = 0;
    for (var i = 0; i < uniforms.n; i++) {
      if (i32(segmentIds[i]) == v) {
        result[before + k] = i;
        k++;
      }
    }
  }`;

const SUM_CODE = `
  fn main(index : i32) {
    if (index >= uniforms.numSegments * uniforms.d) { return; }
    let v = index / uniforms.d;
    let j = index % uniforms.d;
    let start = order[uniforms.n + v];
    let count = order[uniforms.n + uniforms.numSegments + v];
    var sum = 0.0;
    for (var k = 0; k < count; k++) {
      sum = sum + x[order[start + k] * uniforms.d + j];
    }
    result[index] = sum;
  }`;

let registered = false;

export function registerDeterministicWebGpuKernels(): void {
  // never the split-K product: a threshold below one workgroup means "never too few workgroups"
  tf.env().set('WEBGPU_THRESHOLD_TO_INCREASE_WORKGROUPS_FOR_MATMUL', 0.25);
  if (registered) return;
  const original = tf.getKernel('UnsortedSegmentSum', 'webgpu');
  if (!original) return;
  tf.unregisterKernel('UnsortedSegmentSum', 'webgpu');
  tf.registerKernel({
    kernelName: 'UnsortedSegmentSum',
    backendName: 'webgpu',
    kernelFunc: (args) => {
      const { inputs, attrs, backend } = args;
      const { x, segmentIds } = inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
      if (x.dtype !== 'float32') return original.kernelFunc(args);
      const V = (attrs as unknown as { numSegments: number }).numSegments;
      const N = segmentIds.shape.reduce((a, b) => a * b, 1);
      const inner = x.shape.slice(segmentIds.shape.length);
      const D = inner.reduce((a, b) => a * b, 1);
      const b = backend as unknown as WebGpuBackendLike;
      const uniforms = 'numSegments : i32, n : i32, d : i32,';
      const data = [{ type: 'int32', data: [V] }, { type: 'int32', data: [N] }, { type: 'int32', data: [D] }];
      const order = b.runWebGPUProgram(flat('rlhfSegmentOrder', [N + 2 * V], V, uniforms, ['segmentIds'], ORDER_CODE), [segmentIds], 'int32', data);
      try {
        return b.runWebGPUProgram(flat('rlhfSegmentSum', [V, ...inner], V * D, uniforms, ['x', 'order'], SUM_CODE), [x, order], 'float32', data);
      } finally {
        b.disposeData(order.dataId);
      }
    },
  });
  registered = true;
}
