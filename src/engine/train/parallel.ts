/**
 * Data parallelism over worker threads: a batch is split by rows into parts, part 0 is computed
 * here and the others on gradient threads (grad-thread.ts), and the results are combined with
 * each part weighted by its share of the loss weight, so the combined loss and gradient are the
 * full batch's weighted mean. Weights are sent to the threads only after they change.
 */
import * as os from 'os';
import { Worker } from 'worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { concatArrays, takeScalar } from '../read';
import { CausalLM } from '../causal-lm';
import { Rng, deriveSeed } from '../rng';
import { currentBackend } from '../backends/backend';
import { distFile } from '../paths';
import { Batch } from './batch';
import { DpoBatch, RankBatch, ThreadAdapter, ThreadReply, ThreadRequest, ThreadScorer, ValueBatch, dpoLossAndGrads, lossAndGrads, rankLossAndGrads } from './grad-thread';
import { RewardModel } from '../rm/reward-model';

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

/** What a replica needs of a LoRA run: the frozen weights (read afresh per thread: they are transferred) and the adapter's shape. */
async function threadAdapter(model: CausalLM | RewardModel, gpt: CausalLM): Promise<ThreadAdapter | undefined> {
  const lora = gpt.lora;
  if (!lora) return undefined;
  const frozen = [...model.params].filter(([, v]) => !v.trainable);
  return {
    cfg: lora.cfg,
    modules: [...lora.A].map(([m, a]): [string, [number, number]] => [m, [a.shape[0] as number, lora.B.get(m)!.shape[1] as number]]),
    base: { names: frozen.map(([n]) => n), weights: await Promise.all(frozen.map(async ([, v]) => Float32Array.from((await v.data()) as Float32Array))) },
  };
}

/**
 * What the critic's thread needs of a PPO run's reward model: its head, and its trunk unless it is
 * the critic's own frozen base with the adapter off (LoRA), which the replica already holds.
 */
export async function scorerOf(rm: RewardModel, sharesCriticBase: boolean): Promise<ThreadScorer> {
  const copy = async (v: tf.Tensor) => Float32Array.from((await v.data()) as Float32Array);
  const head: [Float32Array, Float32Array] = [await copy(rm.w), await copy(rm.b)];
  if (sharesCriticBase) return { head };
  // a reward model saved as an adapter (rlhf rm --lora) is its base plus the adapter: both go
  const lora = rm.trunk.lora;
  const adapterNames = new Set(lora?.params().map(([n]) => n));
  const trunk = [...rm.params].filter(([n]) => n !== 'score.weight' && n !== 'score.bias' && !adapterNames.has(n));
  const adapter = lora && { cfg: lora.cfg, modules: await Promise.all([...lora.A].map(async ([m, a]): Promise<[string, Float32Array, Float32Array, number, number]> => [m, await copy(a), await copy(lora.B.get(m)!), a.shape[0] as number, lora.B.get(m)!.shape[1] as number])) };
  return { head, trunk: { names: trunk.map(([n]) => n), weights: await Promise.all(trunk.map(([, v]) => copy(v))) }, ...(adapter ? { adapter } : {}) };
}

export class GradThreads {
  private readonly workers: Worker[] = [];
  private stale = true;
  private readonly waiting = new Map<Worker, Map<number, { resolve: (r: ThreadReply) => void; reject: (e: Error) => void }>>();
  private nextId = 0;

  private constructor(private readonly model: CausalLM, private readonly params: Map<string, tf.Variable>, private readonly names: string[], private readonly rm?: RewardModel) {}

  /** `extra` threads beside this one, each with a replica of the model (or of the reward model). */
  static async start(model: CausalLM | RewardModel, extra: number, scorer?: ThreadScorer): Promise<GradThreads> {
    if (!distFile('grad-thread.js')) throw new Error('dist/grad-thread.js is missing: run npm run build, or train with --threads 1');
    if (scorer && extra !== 1) throw new Error('a reward model beside the critic goes to one thread'); // its weights are transferred, not copied
    const rm = model instanceof RewardModel ? model : undefined;
    const gpt = rm ? rm.trunk : (model as CausalLM);
    const names = [...model.params].filter(([, v]) => v.trainable).map(([n]) => n);
    const g = new GradThreads(gpt, model.params, names, rm);
    const backend = currentBackend()?.name ?? 'wasm';
    for (let i = 0; i < extra; i++) {
      const w = new Worker(distFile('grad-thread.js')!);
      g.workers.push(w);
      g.listen(w);
      const adapter = await threadAdapter(model, gpt);
      const transfer = [...(adapter?.base.weights ?? []), ...(scorer?.trunk?.weights ?? [])].map((a) => a.buffer as ArrayBuffer);
      await g.call(w, { type: 'init', backend, config: gpt.config, names, head: Boolean(rm), adapter, scorer }, transfer);
    }
    return g;
  }

  /**
   * One thread for frozen models only (GRPO, RLOO): the reference, from `reference`'s frozen weights
   * (a LoRA policy's base: the policy with its adapter off), and the reward model. Nothing there trains.
   */
  static async startFrozen(policy: CausalLM, reference: CausalLM | undefined, rm: RewardModel | undefined): Promise<GradThreads> {
    if (!distFile('grad-thread.js')) throw new Error('dist/grad-thread.js is missing: run npm run build, or train with --threads 1');
    const copy = async (v: tf.Tensor) => Float32Array.from((await v.data()) as Float32Array);
    const frozen = reference ? [...reference.params].filter(([, v]) => !v.trainable) : [];
    const g = new GradThreads(policy, new Map(), []);
    const w = new Worker(distFile('grad-thread.js')!);
    g.workers.push(w);
    g.listen(w);
    const scorer = rm && { ...(await scorerOf(rm, false)), config: rm.trunk.config };
    const weights = { names: frozen.map(([n]) => n), weights: await Promise.all(frozen.map(([, v]) => copy(v))) };
    const transfer = [...weights.weights, ...(scorer?.trunk?.weights ?? []), ...(scorer?.adapter?.modules.flatMap(([, a, b]) => [a, b]) ?? [])].map((a) => a.buffer as ArrayBuffer);
    await g.call(w, { type: 'init', backend: currentBackend()?.name ?? 'wasm', config: policy.config, names: [], head: false, frozen: weights, scorer }, transfer);
    return g;
  }

  /** The frozen reference's per-token log-probabilities of rows [N, T] (posted before this returns). */
  tokenLogps(ids: Int32Array, N: number, T: number, temperature: number): Promise<Float32Array> {
    return this.valuesOf({ type: 'token-logps', ids, N, T, temperature });
  }

  /** The reward model's scores of whole sequences (posted before this returns). */
  scoreSequences(seqs: number[][], pad: number): Promise<Float32Array> {
    return this.valuesOf({ type: 'score-seqs', seqs, pad });
  }

  get size(): number {
    return this.workers.length + 1;
  }

  /** The model's weights changed (an optimizer step): send them with the next request. */
  invalidate(): void {
    this.stale = true;
  }

  /** Replies reach the request of the same id; a thread that fails or exits fails what it still owes. */
  private listen(w: Worker): void {
    const waiting = new Map<number, { resolve: (r: ThreadReply) => void; reject: (e: Error) => void }>();
    this.waiting.set(w, waiting);
    const failAll = (e: Error) => {
      for (const p of waiting.values()) p.reject(e);
      waiting.clear();
    };
    w.on('message', (m: ThreadReply & { id: number }) => {
      const p = waiting.get(m.id);
      if (!p) return;
      waiting.delete(m.id);
      if (m.type === 'error') p.reject(new Error(`gradient thread: ${m.message}`));
      else p.resolve(m);
    });
    w.on('error', failAll);
    w.on('exit', (code) => failAll(new Error(`gradient thread exited (code ${code})`)));
  }

  /** Posts a request at once (a thread answers its requests one at a time, in order) and resolves with its reply. */
  private call(w: Worker, req: ThreadRequest, transfer: ArrayBuffer[] = []): Promise<ThreadReply> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.get(w)!.set(id, { resolve, reject });
      w.postMessage({ ...req, id }, transfer);
    });
  }

  /** A request to thread 1 that answers with values (posted before this returns), and the values. */
  private valuesOf(req: ThreadRequest): Promise<Float32Array> {
    return this.call(this.workers[0], req).then((r) => (r as Extract<ThreadReply, { type: 'values' }>).values);
  }

  /** The trained weights, when they changed since the threads last received them. */
  private async weightsIfStale(): Promise<Float32Array[] | undefined> {
    if (!this.stale) return undefined;
    this.stale = false;
    return Promise.all(this.names.map(async (n) => (await this.params.get(n)!.data()) as Float32Array));
  }

  /**
   * The same, read synchronously, so that a request is posted before the caller's own long
   * synchronous pass starts (threads run only on the CPU backends, which read synchronously).
   */
  private weightsNow(): Float32Array[] | undefined {
    if (!this.stale) return undefined;
    this.stale = false;
    return this.names.map((n) => this.params.get(n)!.dataSync() as Float32Array);
  }

  /** Sums gradients scaled per part: local ones (tensors) and the threads' (arrays). */
  private combine(local: Map<string, tf.Tensor>, replies: Extract<ThreadReply, { type: 'grad' }>[], scale: number[]): Map<string, tf.Tensor> {
    const grads = new Map<string, tf.Tensor>();
    tf.tidy(() => {
      this.names.forEach((n, j) => {
        let g = scale[0] === 1 ? local.get(n)! : tf.mul(local.get(n)!, scale[0]);
        replies.forEach((r, i) => {
          g = tf.add(g, tf.mul(tf.tensor(r.grads[j], g.shape), scale[i + 1]));
        });
        grads.set(n, tf.keep(g));
      });
    });
    tf.dispose([...local.values()]);
    return grads;
  }

  /**
   * Loss and gradients of one batch, computed in parts across the threads. Part i draws its
   * dropout from `rng` (part 0) or from a generator seeded by (seed, i).
   */
  async lossAndGrads(b: Batch, rng: Rng, seed: number): Promise<{ loss: number; grads: Map<string, tf.Tensor> }> {
    const parts = splitBatch(b, this.size);
    const wsum = parts.map((p) => p.weights.reduce((a, x) => a + x, 0));
    const total = wsum.reduce((a, x) => a + x, 0) || 1;
    const scale = wsum.map((w) => w / total);
    const weights = parts.length > 1 ? await this.weightsIfStale() : undefined;
    const pending = parts.slice(1).map((p, i) => this.call(this.workers[i], { type: 'grad', weights, batch: p, seed: deriveSeed(seed, i + 1) }));
    const local = lossAndGrads(this.model, parts[0], rng);
    const replies = (await Promise.all(pending)) as Extract<ThreadReply, { type: 'grad' }>[];
    let loss = (await takeScalar(local.value)) * scale[0];
    replies.forEach((r, i) => (loss += r.loss * scale[i + 1]));
    return { loss, grads: this.combine(local.grads, replies, scale) };
  }

  /**
   * Reward-model loss and gradients over parts of a batch. Pair weights are global to the whole
   * batch, so the parts' losses and gradients simply add up. Returns the rewards of all parts.
   */
  async rankLossAndGrads(parts: RankBatch[], rng: Rng, seed: number): Promise<{ loss: number; grads: Map<string, tf.Tensor>; rewards: Float32Array }> {
    const weights = parts.length > 1 ? await this.weightsIfStale() : undefined;
    const pending = parts.slice(1).map((p, i) => this.call(this.workers[i], { type: 'rank', weights, batch: p, seed: deriveSeed(seed, i + 1) }));
    const local = await rankLossAndGrads(this.rm!, parts[0], rng);
    const replies = (await Promise.all(pending)) as Extract<ThreadReply, { type: 'grad' }>[];
    let loss = await takeScalar(local.value);
    replies.forEach((r) => (loss += r.loss));
    const rewards = concatArrays([local.rewards, ...replies.map((x) => x.rewards!)]);
    return { loss, grads: this.combine(local.grads, replies, parts.map(() => 1)), rewards };
  }

  /**
   * DPO's loss and gradients over parts of a batch (whole rankings each). A part's loss is a mean
   * over its `terms` (rankings or pairs), so it weighs terms_i / sum(terms). Returns the policy's
   * log-probabilities of every part's rows, in the parts' order.
   */
  async dpoLossAndGrads(parts: DpoBatch[], terms: number[]): Promise<{ loss: number; grads: Map<string, tf.Tensor>; logps: Float32Array }> {
    const total = terms.reduce((a, x) => a + x, 0);
    const scale = terms.map((t) => t / total);
    const weights = parts.length > 1 ? await this.weightsIfStale() : undefined;
    const pending = parts.slice(1).map((p, i) => this.call(this.workers[i], { type: 'dpo', weights, batch: p }));
    const local = await dpoLossAndGrads(this.model, parts[0]);
    const replies = (await Promise.all(pending)) as Extract<ThreadReply, { type: 'grad' }>[];
    let loss = (await takeScalar(local.value)) * scale[0];
    replies.forEach((r, i) => (loss += r.loss * scale[i + 1]));
    const logps = concatArrays([local.logps, ...replies.map((r) => r.logps!)]);
    return { loss, grads: this.combine(local.grads, replies, scale), logps };
  }

  /** Scores of sequences by the reward model's replica on thread 1, at the current weights (posted before this returns). */
  replicaScores(seqs: number[][], pad: number): Promise<Float32Array> {
    return this.valuesOf({ type: 'replica-scores', weights: this.weightsNow(), seqs, pad });
  }

  /** Sequence log-probabilities [N] of rows on thread 1 (DPO's reference and evaluations, beside this thread's share). */
  sequenceLogps(ids: Int32Array, mask: Float32Array, N: number, T: number): Promise<Float32Array> {
    // posted before this returns, so the caller's own pass runs meanwhile
    return this.valuesOf({ type: 'logps', weights: this.weightsNow(), ids, mask, N, T });
  }

  // PPO's critic on thread 1. Each request is posted before the method returns: the caller's
  // policy pass, which follows, runs meanwhile.

  /** The critic's values [N * T] of rows ids [N, T]. */
  values(ids: Int32Array, N: number, T: number): Promise<Float32Array> {
    return this.valuesOf({ type: 'values', weights: this.weightsNow(), ids, N, T });
  }

  /** The reward model's scores [N] (a thread started with a scorer), each row read at last[n]. */
  scores(ids: Int32Array, N: number, T: number, last: number[]): Promise<Float32Array> {
    return this.valuesOf({ type: 'scores', ids, N, T, last });
  }

  /** The value loss of a minibatch, its clip fraction and the critic's gradients. */
  valueLossAndGrads(batch: ValueBatch): Promise<{ loss: number; clipfrac: number; grads: Map<string, tf.Tensor> }> {
    return this.call(this.workers[0], { type: 'value-grad', weights: this.weightsNow(), batch }).then((reply) => {
      const r = reply as Extract<ThreadReply, { type: 'grad' }>;
      return { loss: r.loss, clipfrac: r.clipfrac!, grads: new Map(this.names.map((n, j) => [n, tf.tensor(r.grads[j], this.params.get(n)!.shape)])) };
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
  }
}
