/**
 * The decoding thread (bundled as dist/decode-thread.js): the second core's half of a batch's
 * decoding steps. It holds a copy of the model's weights on a wasm heap of its own, with the fused
 * kernels instantiated on it from the main thread's compiled module (already optimised by the main
 * thread's use: a fresh compile would run its first few hundred steps in the baseline tier), and no
 * TensorFlow.js. It talks to the main thread through one SharedArrayBuffer and Atomics rather than
 * messages: a step of the demo's model is a fraction of a millisecond, a message's round trip about
 * a tenth of one.
 *
 * The shared buffer: a header of Int32 words (REQUEST, DONE, STATUS, COMMAND, ARG0, ARG1), the rows'
 * ids and positions, then a data region. The main thread fills what a command needs, sets COMMAND,
 * bumps REQUEST and notifies; this thread does it and sets DONE to the request's number (or STATUS
 * to 1 and an error text in the data region), and notifies.
 *   COPY: ARG1 bytes of the data region to heap offset ARG0 (weights, adapters, tables, cache rows:
 *         streamed through a data region of a few MB, so no copy of a whole model is ever made)
 *   STEP: one decoding step of the rows; their logits land at the start of the data region
 *   RELEASE: the decoder is done; wait for the next one's layout (a message)
 */
import { parentPort, workerData } from 'worker_threads';
import { ModelConfig } from './config';
import { DecodeHeap, DecodeSteps, headDim, kvHeads } from './decode-steps';
import type { FusedExports } from './kernels/fused';

export const REQUEST = 0, DONE = 1, STATUS = 2, COMMAND = 3, ARG0 = 4, ARG1 = 5;
export const COPY = 0, STEP = 1, RELEASE = 2;
const HEADER_BYTES = 64;

/** Where a decoder's data go in the thread's heap (byte offsets), sent as a message per decoder. */
export interface DecodeLayout {
  config: ModelConfig;
  /** Rows this thread decodes, and the positions its cache holds. */
  B: number;
  N: number;
  heapBytes: number;
  weights: [string, number][];
  buffers: [string, number][];
  kc: number[];
  vc: number[];
  adapters: [string, { A: number; B: number; r: number }][];
  shared: SharedArrayBuffer;
}

/** The shared buffer's regions for B rows: ids, positions, and the data region after them. */
export function sharedRegions(B: number) {
  const ids = HEADER_BYTES, positions = ids + 4 * B, data = Math.ceil((positions + 4 * B) / 64) * 64;
  return { ids, positions, data };
}

/** Lays out a heap from 64 (a weight at 0 would read as "absent"), 64-byte aligned. */
export function bumpAllocator() {
  let end = 64;
  return {
    place(floats: number): number {
      const at = end;
      end += Math.ceil((floats * 4) / 64) * 64;
      return at;
    },
    get end() {
      return end;
    },
  };
}

let memory: WebAssembly.Memory | undefined;
let kernels: FusedExports | undefined;

function serve(layout: DecodeLayout, module: WebAssembly.Module): void {
  const ctrl = new Int32Array(layout.shared, 0, HEADER_BYTES / 4);
  const at = sharedRegions(layout.B);
  const fail = (seq: number, e: unknown) => {
    const text = new TextEncoder().encode(e instanceof Error ? e.message : String(e)).subarray(0, 1020);
    new Int32Array(layout.shared, at.data, 1)[0] = text.length;
    new Uint8Array(layout.shared, at.data + 4, text.length).set(text);
    Atomics.store(ctrl, STATUS, 1);
    Atomics.store(ctrl, DONE, seq);
    Atomics.notify(ctrl, DONE);
  };
  let steps: DecodeSteps;
  try {
    const pages = Math.ceil(layout.heapBytes / 65536);
    if (!memory) {
      memory = new WebAssembly.Memory({ initial: pages, maximum: 65536 });
      kernels = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as FusedExports;
    } else if (memory.buffer.byteLength < pages * 65536) {
      memory.grow(pages - memory.buffer.byteLength / 65536);
    }
    // the caches zeroed now (as the main thread's are): their pages are first touched here, while
    // the main thread lays out its own rows, rather than step by step as positions are written
    const c = layout.config, cacheFloats = layout.B * kvHeads(c) * layout.N * headDim(c);
    for (const at of [...layout.kc, ...layout.vc]) new Float32Array(memory.buffer, at, cacheFloats).fill(0);
    const weights = new Map(layout.weights), buffers = new Map(layout.buffers);
    const heap: DecodeHeap = {
      k: kernels!,
      weight: (name) => weights.get(name) ?? 0,
      buffer: (name) => buffers.get(name)!,
      kc: layout.kc,
      vc: layout.vc,
      adapters: new Map(layout.adapters),
      memory: () => memory!.buffer,
    };
    steps = new DecodeSteps(heap, layout.config, layout.B, layout.N);
  } catch (e) {
    fail(Atomics.load(ctrl, REQUEST), e);
    return;
  }
  const ids = new Int32Array(layout.shared, at.ids, layout.B), positions = new Int32Array(layout.shared, at.positions, layout.B);
  const V = layout.config.vocab_size;
  // ready: requests go on being numbered from the last one (a wake-up meant for the last decoder is never lost)
  let seen = Atomics.load(ctrl, REQUEST);
  Atomics.store(ctrl, DONE, seen);
  Atomics.notify(ctrl, DONE);
  for (;;) {
    Atomics.wait(ctrl, REQUEST, seen);
    const seq = Atomics.load(ctrl, REQUEST);
    if (seq === seen) continue;
    seen = seq;
    const command = Atomics.load(ctrl, COMMAND);
    if (command === RELEASE) return;
    try {
      if (command === COPY) {
        const dst = Atomics.load(ctrl, ARG0), bytes = Atomics.load(ctrl, ARG1);
        new Uint8Array(memory!.buffer, dst, bytes).set(new Uint8Array(layout.shared, at.data, bytes));
      } else {
        const out = steps.step(ids, positions);
        new Float32Array(layout.shared, at.data, layout.B * V).set(new Float32Array(memory!.buffer, out, layout.B * V));
      }
    } catch (e) {
      fail(seq, e);
      return;
    }
    Atomics.store(ctrl, DONE, seq);
    Atomics.notify(ctrl, DONE);
  }
}

// only in the thread decode.ts starts (a bundle that merely imports the protocol above serves nothing)
if (workerData?.role === 'decode') {
  const module = workerData.module as WebAssembly.Module;
  parentPort?.on('message', (layout: DecodeLayout) => serve(layout, module));
}
