/**
 * Data parallelism over worker threads: a batch is split by rows into parts, part 0 is computed
 * here and the others on gradient threads (grad-thread.ts), and the results are combined with
 * each part weighted by its share of the loss weight, so the combined loss and gradient are the
 * full batch's weighted mean. Weights are sent to the threads only after they change.
 */
import * as os from 'os';
import { Worker } from 'worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { GPT } from '../model';
import { Rng, deriveSeed } from '../rng';
import { currentBackend } from '../backends/backend';
import { distFile } from '../paths';
import { Batch } from './trainer';
import { ThreadReply, ThreadRequest, lossAndGrads } from './grad-thread';

/** How many threads `auto` uses: both cores for the single-threaded CPU backends, else one. */
export function autoThreads(): number {
  const b = currentBackend()?.name;
  if ((b !== 'wasm' && b !== 'cpu') || !distFile('grad-thread.js')) return 1;
  return Math.max(1, Math.min(2, os.availableParallelism?.() ?? os.cpus().length));
}

/** Splits a batch into `n` parts by rows (the first parts get the extra rows). */
export function splitBatch(b: Batch, n: number): Batch[] {
  const parts: Batch[] = [];
  let row = 0;
  for (let i = 0; i < n && row < b.B; i++) {
    const rows = Math.floor(b.B / n) + (i < b.B % n ? 1 : 0);
    const [s, e] = [row * b.T, (row + rows) * b.T];
    parts.push({ ids: b.ids.slice(s, e), targets: b.targets.slice(s, e), weights: b.weights.slice(s, e), B: rows, T: b.T });
    row += rows;
  }
  return parts;
}

export class GradThreads {
  private readonly workers: Worker[] = [];
  private stale = true;

  private constructor(private readonly model: GPT, private readonly names: string[]) {}

  static async start(model: GPT, extra: number): Promise<GradThreads> {
    if (!distFile('grad-thread.js')) throw new Error('dist/grad-thread.js is missing: run npm run build, or train with --threads 1');
    const names = [...model.params].filter(([, v]) => v.trainable).map(([n]) => n);
    const g = new GradThreads(model, names);
    const backend = currentBackend()?.name ?? 'wasm';
    for (let i = 0; i < extra; i++) {
      const w = new Worker(distFile('grad-thread.js')!);
      g.workers.push(w);
      await g.call(w, { type: 'init', backend, config: model.config, names });
    }
    return g;
  }

  get size(): number {
    return this.workers.length + 1;
  }

  /** The model's weights changed (an optimizer step): send them with the next request. */
  invalidate(): void {
    this.stale = true;
  }

  private call(w: Worker, req: ThreadRequest, transfer: ArrayBuffer[] = []): Promise<ThreadReply> {
    return new Promise((resolve, reject) => {
      const onMessage = (m: ThreadReply) => {
        w.off('error', onError);
        if (m.type === 'error') reject(new Error(`gradient thread: ${m.message}`));
        else resolve(m);
      };
      const onError = (e: Error) => {
        w.off('message', onMessage);
        reject(e);
      };
      w.once('message', onMessage);
      w.once('error', onError);
      w.postMessage(req, transfer);
    });
  }

  /**
   * Loss and gradients of one batch, computed in parts across the threads. Part i draws its
   * dropout from `rng` (part 0) or from a generator seeded by (seed, i).
   */
  async lossAndGrads(b: Batch, rng: Rng, seed: number): Promise<{ loss: number; grads: Map<string, tf.Tensor> }> {
    const parts = splitBatch(b, this.size);
    const wsum = parts.map((p) => p.weights.reduce((a, x) => a + x, 0));
    const total = wsum.reduce((a, x) => a + x, 0) || 1;
    let weights: Float32Array[] | undefined;
    if (this.stale && parts.length > 1) {
      weights = await Promise.all(this.names.map(async (n) => (await this.model.p(n).data()) as Float32Array));
      this.stale = false;
    }
    const pending = parts.slice(1).map((p, i) =>
      this.call(this.workers[i], { type: 'grad', weights, batch: p, seed: deriveSeed(seed, i + 1) }),
    );
    const local = lossAndGrads(this.model, parts[0], rng);
    const replies = (await Promise.all(pending)) as Extract<ThreadReply, { type: 'grad' }>[];
    let loss = local.value.dataSync()[0] * (wsum[0] / total);
    local.value.dispose();
    const grads = new Map<string, tf.Tensor>();
    tf.tidy(() => {
      this.names.forEach((n, j) => {
        let g = tf.mul(local.grads.get(n)!, wsum[0] / total);
        replies.forEach((r, i) => {
          g = tf.add(g, tf.mul(tf.tensor(r.grads[j], g.shape), wsum[i + 1] / total));
        });
        grads.set(n, tf.keep(g));
      });
    });
    replies.forEach((r, i) => (loss += r.loss * (wsum[i + 1] / total)));
    tf.dispose([...local.grads.values()]);
    return { loss, grads };
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
  }
}
