/**
 * Decoding without dispatch: after the prompt has gone through the model once (TensorFlow.js,
 * filling the key/value cache), each new token of every sequence goes through the whole model as
 * a handful of fused-kernel calls per layer on the wasm heap (decode-steps.ts): no op, no tensor,
 * no tape. A step of the 0.8M-parameter character model costs about 4 ms in ops, nearly all of it
 * dispatch; here it costs what its arithmetic costs.
 *
 * With two cores and at least two sequences, the batch is split: the first half on this thread,
 * where the weights already are, the rest on the decoding thread (decode-thread.ts), which holds
 * a copy of the weights on a heap of its own. The two halves run at once; each sequence's logits
 * are the same bits either way (the same kernels on the same weights, row by row). Only where the
 * fused kernels serve the backend; generate() takes the op path otherwise.
 */
import * as os from 'os';
import { Worker } from 'worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { CausalLM } from './causal-lm';
import { DecodeHeap, DecodeSteps, headDim, kvHeads, rotaryTables, stepBuffers } from './decode-steps';
import { ARG0, ARG1, COMMAND, COPY, DONE, DecodeLayout, RELEASE, REQUEST, STATUS, STEP, bumpAllocator, sharedRegions } from './decode-thread';
import { fusedKernels } from './kernels/fused';
import { KVCache } from './model';
import { distFile } from './paths';
import type { Llama } from './llama';

/** How many threads decoding uses by default: both cores where there are two and the thread's bundle is built. */
export function decodeThreads(): number {
  if (process.env.RLHF_DECODE_THREADS) return Math.max(1, Number(process.env.RLHF_DECODE_THREADS) || 1);
  if (!distFile('decode-thread.js')) return 1;
  return Math.min(2, os.availableParallelism?.() ?? os.cpus().length);
}

/** A model past this many weights decodes on one thread (the second thread would hold a copy). */
const MAX_COPIED_WEIGHTS = 300e6;

export class FusedDecoder {
  private readonly kept: tf.Tensor[] = [];
  private readonly local: DecodeSteps;
  private readonly remote?: RemoteRows;
  /** The local rows' logits, or all rows' when a second thread has some. */
  private readonly out?: Float32Array;

  private constructor(private readonly model: CausalLM, readonly B: number, readonly maxLength: number, private readonly f: NonNullable<ReturnType<typeof fusedKernels>>, cache: KVCache, threads: number) {
    const c = model.config, N = maxLength, hd = headDim(c);
    const adapters = this.adapters();
    const lora = adapters.size ? { r: Math.max(...[...adapters.values()].map((a) => a.r)), widest: Math.max(...[...model.lora!.B.values()].map((b) => b.shape[1] as number)) } : undefined;
    const rotary = c.llama ? rotaryTables(N, hd, (p, cos, sin) => (model as Llama).rotaryAt(p, cos, sin)) : undefined;
    // the second thread's share first, so that it lays out its heap while this thread lays out its
    // own: about half the rows, when there are two threads and it can hold a copy of the weights
    const copied = [...model.params.values()].reduce((n, p) => n + p.size, 0);
    const share = threads >= 2 && B >= 2 && copied <= MAX_COPIED_WEIGHTS ? Math.floor(B / 2) : 0;
    const rows = share && cache.length ? cacheRows(cache, B - share, B) : undefined;
    let local: ReturnType<FusedDecoder['layOut']> | undefined;
    try {
      const remote = share ? RemoteRows.open(model, f, share, N, adapters, lora, rotary, rows && { length: cache.length, ...rows.remote }) : undefined;
      local = this.layOut(remote ? B - share : B, adapters, lora, rotary);
      if (remote?.ready()) this.remote = remote;
      else if (remote) { // the thread never answered: every row here after all
        tf.dispose(local.tensors);
        local = this.layOut(B, adapters, lora, rotary);
      }
      this.local = local.steps;
      if (cache.length) this.load(this.remote ? rows!.local : cacheRows(cache, B, B).local, cache.length, local.kc, local.vc, this.local.B);
      this.kept.push(...local.tensors);
    } catch (e) {
      tf.dispose([...this.kept, ...(local?.tensors ?? [])]);
      throw e;
    }
    if (this.remote) this.out = new Float32Array(B * c.vocab_size);
  }

  /** This thread's buffers and caches for B1 rows, on the backend's heap, and its steps over them. */
  private layOut(B1: number, adapters: Map<string, { A: tf.Tensor; B: tf.Tensor; r: number }>, lora: { r: number; widest: number } | undefined, rotary: { cos: Float32Array; sin: Float32Array } | undefined) {
    const { model, f, maxLength: N } = this;
    const c = model.config, hd = headDim(c), KV = kvHeads(c);
    const tensors: tf.Tensor[] = [];
    const zeros = (shape: number[], dtype: 'float32' | 'int32' = 'float32') => {
      const t = f.zeros(shape, dtype);
      tensors.push(t);
      return t;
    };
    const buffers = new Map(stepBuffers(c, B1, N, lora).map(([name, shape, dtype]) => [name, zeros(shape, dtype)]));
    const kc = Array.from({ length: c.n_layer }, () => zeros([B1, KV, N, hd]));
    const vc = Array.from({ length: c.n_layer }, () => zeros([B1, KV, N, hd]));
    if (rotary) {
      f.heap().set(rotary.cos, f.ptr(buffers.get('cos')!) >> 2);
      f.heap().set(rotary.sin, f.ptr(buffers.get('sin')!) >> 2);
    }
    const heap: DecodeHeap = {
      k: f.k,
      weight: (name) => {
        const v = model.params.get(name);
        return v ? f.ptr(v) : 0;
      },
      buffer: (name) => f.ptr(buffers.get(name)!),
      kc: kc.map((t) => f.ptr(t)),
      vc: vc.map((t) => f.ptr(t)),
      adapters: new Map([...adapters].map(([m, a]) => [m, { A: f.ptr(a.A), B: f.ptr(a.B), r: a.r }])),
      memory: () => f.heap().buffer,
    };
    return { steps: new DecodeSteps(heap, c, B1, N), tensors, kc, vc };
  }

  /**
   * A decoder for B sequences whose first `cache.length` positions are in `cache` (as the op path
   * left it: [B, heads, length, head_dim] per layer; or none yet), or undefined where it cannot serve.
   * Its own cache holds `maxLength` positions (at most the model's context): what the sequences reach.
   * `threads`: 1 keeps every row on this thread; 2 (the default on two cores) splits the batch.
   */
  static from(model: CausalLM, B: number, cache: KVCache, maxLength = model.config.n_positions, threads = decodeThreads()): FusedDecoder | undefined {
    const f = fusedKernels();
    const c = model.config;
    // a view without weights of its own (the reference as the policy with its adapter off) takes the op path
    if (!f || !model.params.size || (cache.length > 0 && cache.k.length !== c.n_layer)) return undefined;
    if (c.n_embd % 4 || headDim(c) % 4) return undefined;
    return new FusedDecoder(model, B, Math.max(1, Math.min(maxLength, c.n_positions), cache.length), f, cache, threads);
  }

  /** Whether a second thread decodes some of the rows. */
  get threads(): number {
    return this.remote ? 2 : 1;
  }

  private keep(t: tf.Tensor): tf.Tensor {
    this.kept.push(t);
    return t;
  }

  /**
   * A LoRA adapter beside the weights, as the op path applies it: A, and B scaled by alpha / r once
   * for the decoder's life; no merged copy of the weights.
   */
  private adapters(): Map<string, { A: tf.Tensor; B: tf.Tensor; r: number }> {
    const lora = this.model.lora;
    const out = new Map<string, { A: tf.Tensor; B: tf.Tensor; r: number }>();
    if (!lora) return out;
    for (const [m, a] of lora.A) {
      const scaled = this.keep(tf.tidy(() => tf.mul(lora.B.get(m)!, lora.scale)));
      out.set(m, { A: a, B: scaled, r: a.shape[1] as number });
    }
    return out;
  }

  /** The op path's cache rows [0, B1) into this thread's cache ([rows, len, hd] -> [rows, N, hd]). */
  private load(rows: { k: Float32Array[]; v: Float32Array[] }, len: number, kc: tf.Tensor[], vc: tf.Tensor[], B1: number): void {
    const heap = this.f.heap();
    const c = this.model.config, hd = headDim(c), KV = kvHeads(c), N = this.maxLength;
    for (let i = 0; i < c.n_layer; i++) {
      for (const [s, dst] of [[rows.k[i], kc[i]], [rows.v[i], vc[i]]] as const) {
        const at = this.f.ptr(dst) >> 2;
        for (let r = 0; r < B1 * KV; r++) heap.set(s.subarray(r * len * hd, (r + 1) * len * hd), at + r * N * hd);
      }
    }
  }

  /**
   * Logits [B * vocab] (valid until the next step) after token ids[b] at position positions[b] of
   * sequence b (a number: the same position for all).
   */
  step(ids: number[], positions: number | number[]): Float32Array {
    const B = this.B, V = this.model.config.vocab_size, B1 = this.local.B;
    const pos = typeof positions === 'number' ? new Array<number>(B).fill(positions) : positions;
    if (!this.remote) {
      const at = this.local.step(ids, pos) >> 2;
      return this.f.heap().subarray(at, at + B * V);
    }
    // the second thread starts on its rows, this one does its own meanwhile
    this.remote.post(ids.slice(B1), pos.slice(B1));
    const at = this.local.step(ids.slice(0, B1), pos.slice(0, B1)) >> 2;
    const mine = this.f.heap().subarray(at, at + B1 * V);
    this.out!.set(mine);
    this.remote.wait(this.out!.subarray(B1 * V));
    return this.out!;
  }

  dispose(): void {
    this.remote?.close();
    tf.dispose(this.kept);
  }
}

/** Rows [0, B1) and [B1, B) of every layer's op-path cache ([B, KV, len, hd]), read once. */
function cacheRows(cache: KVCache, B1: number, B: number) {
  const split = (ts: tf.Tensor[]) => ts.map((t) => {
    const all = t.dataSync() as Float32Array, per = all.length / B;
    return [all.subarray(0, B1 * per), all.slice(B1 * per)] as const;
  });
  const k = split(cache.k), v = split(cache.v);
  return { local: { k: k.map((x) => x[0]), v: v.map((x) => x[0]) }, remote: { k: k.map((x) => x[1]), v: v.map((x) => x[1]) } };
}

/**
 * The process's decoding thread, started on first use and kept (unreferenced, so it never holds the
 * process open): starting one costs tens of milliseconds, more than a short generation's steps.
 * It serves one decoder at a time; a decoder made while it is taken decodes on one thread. Its
 * shared buffer is kept too (a fresh one's pages cost their first touch again).
 */
interface DecodingThread {
  worker: Worker;
  taken: boolean;
  broken: boolean;
  shared?: SharedArrayBuffer;
}
let thread: DecodingThread | undefined;

/** The data region's size: what streams the weights (a few MB at a time) and holds the rows' logits. */
const STAGING_BYTES = 4 << 20;
/** How long a command may take before the thread is given up on (a step of the largest model it takes is well under a second). */
const STEP_TIMEOUT_MS = 120_000;

class RemoteRows {
  private readonly ctrl: Int32Array;
  private readonly ids: Int32Array;
  private readonly positions: Int32Array;
  private readonly data: Float32Array;
  private seq = 0;
  private closed = false;

  private constructor(shared: SharedArrayBuffer, private readonly B: number, private readonly V: number) {
    const at = sharedRegions(B);
    this.ctrl = new Int32Array(shared, 0, 16);
    this.seq = Atomics.load(this.ctrl, REQUEST); // requests are numbered on from the last decoder's
    this.ids = new Int32Array(shared, at.ids, B);
    this.positions = new Int32Array(shared, at.positions, B);
    this.data = new Float32Array(shared, at.data, (shared.byteLength - at.data) >> 2);
  }

  /**
   * Hands B rows to the decoding thread: sends the layout of its heap (a message) and returns at
   * once; ready() then streams the weights, the adapters, the rotary tables and the op path's cache
   * rows into it. Undefined when there is no thread to use.
   */
  static open(
    model: CausalLM, f: NonNullable<ReturnType<typeof fusedKernels>>, B: number, N: number,
    adapters: Map<string, { A: tf.Tensor; B: tf.Tensor; r: number }>, lora: { r: number; widest: number } | undefined,
    rotary: { cos: Float32Array; sin: Float32Array } | undefined, cache: { length: number; k: Float32Array[]; v: Float32Array[] } | undefined,
  ): RemoteRows | undefined {
    const file = distFile('decode-thread.js');
    if (!file || thread?.taken || thread?.broken) return undefined;
    if (!thread) {
      let worker: Worker;
      try {
        worker = new Worker(file, { workerData: { role: 'decode', module: f.module } });
      } catch {
        return undefined; // no thread to be had here: one thread decodes
      }
      worker.unref();
      const t: DecodingThread = (thread = { worker, taken: false, broken: false });
      worker.on('error', () => (t.broken = true));
      worker.on('exit', () => (t.broken = true));
    }
    const c = model.config, hd = headDim(c), KV = kvHeads(c), V = c.vocab_size;
    const heap = bumpAllocator();
    const weights = [...model.params].map(([name, v]) => [name, heap.place(v.size)] as [string, number]);
    const adapterAt = [...adapters].map(([m, a]) => [m, { A: heap.place(a.A.size), B: heap.place(a.B.size), r: a.r }] as [string, { A: number; B: number; r: number }]);
    const buffers = stepBuffers(c, B, N, lora).map(([name, shape]) => [name, heap.place(shape.reduce((x, y) => x * y, 1))] as [string, number]);
    const kc = Array.from({ length: c.n_layer }, () => heap.place(B * KV * N * hd));
    const vc = Array.from({ length: c.n_layer }, () => heap.place(B * KV * N * hd));
    const bytes = sharedRegions(B).data + Math.max(STAGING_BYTES, 4 * B * V, 1024);
    if (!thread.shared || thread.shared.byteLength < bytes) thread.shared = new SharedArrayBuffer(bytes);
    const r = new RemoteRows(thread.shared, B, V);
    Atomics.store(r.ctrl, STATUS, 0);
    Atomics.store(r.ctrl, DONE, -1); // the thread sets it to the last request's number when it is ready
    thread.taken = true;
    const layout: DecodeLayout = { config: c, B, N, heapBytes: heap.end, weights, buffers, kc, vc, adapters: adapterAt, shared: thread.shared };
    thread.worker.postMessage(layout);
    // the data, streamed in heap order through the data region once the thread is ready (ready())
    r.fill = () => {
      const stage = r.stager();
      const view = (t: tf.Tensor) => f.heap().subarray(f.ptr(t) >> 2, (f.ptr(t) >> 2) + t.size);
      for (const [name, at] of weights) stage(at, view(model.params.get(name)!));
      for (const [m, at] of adapterAt) {
        stage(at.A, view(adapters.get(m)!.A));
        stage(at.B, view(adapters.get(m)!.B));
      }
      const buffer = new Map(buffers);
      if (rotary) {
        stage(buffer.get('cos')!, rotary.cos);
        stage(buffer.get('sin')!, rotary.sin);
      }
      if (cache) { // every layer's keys, then every layer's values: heap order
        const len = cache.length;
        for (const [src, dst] of [...cache.k.map((t, i) => [t, kc[i]] as const), ...cache.v.map((t, i) => [t, vc[i]] as const)]) {
          for (let row = 0; row < B * KV; row++) stage(dst + row * N * hd * 4, src.subarray(row * len * hd, (row + 1) * len * hd));
        }
      }
      stage(-1, new Float32Array(0)); // what is left
    };
    return r;
  }

  private fill?: () => void;

  /**
   * Waits for the thread to have laid out its heap, then streams the data into it. False when the
   * thread never answered (the first time this includes starting it): it is given up on.
   */
  ready(): boolean {
    if (!this.until(-1, 30_000)) {
      thread!.broken = true;
      thread!.taken = false;
      this.closed = true;
      return false;
    }
    this.check();
    this.fill!();
    this.fill = undefined;
    return true;
  }

  /**
   * stage(dst, values): values bound for heap offset dst, gathered in the data region while they
   * fall in one window of it, sent when it is full; stage(-1, ...) sends what is left. The offsets
   * must rise (the heap's order): a window is sent whole, gaps included, so windows must not overlap.
   */
  private stager() {
    const cap = this.data.length * 4;
    let start = -1, end = -1;
    let sentTo = -1;
    const send = () => {
      if (start >= 0 && end > start) this.command(COPY, start, end - start);
      sentTo = Math.max(sentTo, end);
      start = end = -1;
    };
    const stage = (dst: number, values: Float32Array): void => {
      if (dst < 0) return send();
      const bytes = values.length * 4;
      if (dst < Math.max(end, sentTo)) throw new Error(`decoding thread: data staged out of heap order (${dst} after ${Math.max(end, sentTo)})`);
      if (start >= 0 && dst + bytes - start > cap) send();
      if (bytes > cap) { // larger than the window: in pieces
        for (let o = 0; o < values.length; o += cap >> 2) stage(dst + o * 4, values.subarray(o, Math.min(values.length, o + (cap >> 2))));
        return;
      }
      if (start < 0) start = dst;
      this.data.set(values, (dst - start) >> 2);
      end = dst + bytes;
    };
    return stage;
  }

  /** Runs one command on the thread and waits for it. */
  private command(command: number, arg0 = 0, arg1 = 0): void {
    Atomics.store(this.ctrl, COMMAND, command);
    Atomics.store(this.ctrl, ARG0, arg0);
    Atomics.store(this.ctrl, ARG1, arg1);
    Atomics.store(this.ctrl, REQUEST, ++this.seq);
    Atomics.notify(this.ctrl, REQUEST);
    if (command === RELEASE) return;
    if (!this.until(this.seq - 1, STEP_TIMEOUT_MS)) throw this.lost();
    this.check();
  }

  /** A thread that stopped answering (it died, or a step took minutes): given up on for this process. */
  private lost(): Error {
    this.closed = true;
    thread!.broken = true;
    thread!.taken = false;
    return new Error(`the decoding thread did not answer within ${STEP_TIMEOUT_MS / 1000} s`);
  }

  /** Waits until DONE is no longer `from`; false after `ms` without an answer. */
  private until(from: number, ms: number): boolean {
    const end = Date.now() + ms;
    while (Atomics.load(this.ctrl, DONE) === from) {
      const left = end - Date.now();
      if (left <= 0) return false;
      Atomics.wait(this.ctrl, DONE, from, Math.min(left, 1000));
    }
    return true;
  }

  /** Throws the thread's error, if it reported one (it is then free for the next decoder). */
  private check(): void {
    if (!Atomics.load(this.ctrl, STATUS)) return;
    this.closed = true;
    thread!.taken = false;
    const n = new Int32Array(this.data.buffer, this.data.byteOffset, 1)[0];
    throw new Error(`decoding thread: ${new TextDecoder().decode(new Uint8Array(this.data.buffer, this.data.byteOffset + 4, n).slice())}`);
  }

  /** Starts a step of the thread's rows. */
  post(ids: number[], positions: number[]): void {
    this.ids.set(ids);
    this.positions.set(positions);
    Atomics.store(this.ctrl, COMMAND, STEP);
    Atomics.store(this.ctrl, REQUEST, ++this.seq);
    Atomics.notify(this.ctrl, REQUEST);
  }

  /** The posted step's logits into `out`. */
  wait(out: Float32Array): void {
    if (!this.until(this.seq - 1, STEP_TIMEOUT_MS)) throw this.lost();
    this.check();
    out.set(this.data.subarray(0, this.B * this.V));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.command(RELEASE);
    thread!.taken = false;
  }
}
