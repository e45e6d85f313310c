/**
 * The cost line `rlhf submit` prints for each run before anything is queued. The passes are those
 * the stage itself will plan when it starts (the same plan functions: lmPlan, rmPlan, dpoPlan,
 * rlPasses), computed here from the stage's options, its data and its model's config.json and
 * tokenizer; no weights are read. A model a chain has yet to train (the SFT model a reward model
 * starts from) has the shape of the model it is trained from. The time is at this machine's
 * measured speed for a CPU job (the cluster's cores may be faster or slower) or, for a job with
 * GPUs, at the measured speed of the CUDA backend when this machine has one, else at `rlhf cost`'s
 * A100 assumptions; it is set beside the time limit.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ParsedOpts } from '../args';
import { defaultConfig } from '../../engine/config';
import { CharTokenizer, Gpt2Tokenizer } from '../../engine/tokenizer';
import { readModelHead } from '../../engine/checkpoint';
import { DEFAULT_KWH_PRICE, DEFAULT_PUE, DEFAULT_TRAIN_MFU, GPUS, Pass, PlannedModel, Target, costLine, estimateCost, fmtFlops, fmtSeconds, passFlops } from '../../engine/cost';
import { TrainConfig, lmPlan } from '../../engine/train/trainer';
import { SFT_DEFAULTS, prepareSft, sftData } from '../../engine/stages/sft';
import { RM_DEFAULTS, prepareRm, rmPlan } from '../../engine/stages/rm';
import { DEFAULT_DPO, DPO_TRAIN, DpoConfig, dpoPlan, prepareDpo } from '../../engine/stages/dpo';
import { corpusData, readCorpus } from '../../engine/stages/pretrain';
import { DEFAULT_TRAIN, defaultCorpusPath } from '../../engine/stages/common';
import { readPrompts } from '../../engine/rl/rollout';
import { rlPasses } from '../../engine/rl/plan';
import { encodeContext } from '../../engine/chat';
import { loraParams } from '../../engine/memory';
import { nearestSpeed } from '../../engine/speed-cache';
import { trainOverrides } from './shared';
import { ppoConfig } from './train';
import { DEFAULT_PPO } from '../../engine/stages/ppo';
import { Resources } from '../../cluster/submit';

type ModelHead = ReturnType<typeof readModelHead>;

/** The model as a plan sees it: trained whole, or a LoRA adapter of rank --lora-r (or the folder's own adapter). */
function planned(m: ModelHead, o: ParsedOpts): PlannedModel {
  const r = (o['lora-r'] as number | undefined) || m.adapterR || 0;
  return { config: m.config, lora: r > 0 ? { numParameters: loraParams(m.config, r) } : undefined };
}

/**
 * The passes of one stage command. `source` maps a model folder a chain has yet to write to the
 * folder it is trained from (undefined when it is not one of the chain's).
 */
export function stagePasses(stage: string, o: ParsedOpts, source: (dir: string) => string | undefined): Pass[] {
  // a folder the chain has yet to write: the one it is trained from (hops bounded: a chain is short)
  const head = (dir: string): ModelHead => {
    let d = dir;
    for (let hops = 0; hops < 16 && !fs.existsSync(d); hops++) d = source(path.resolve(d)) ?? d;
    return readModelHead(d);
  };
  const train = (defaults: Partial<TrainConfig>): TrainConfig => ({ ...DEFAULT_TRAIN, ...defaults, ...trainOverrides(o) });
  const data = { data: o.data as string, evalData: o['eval-data'] as string | undefined };
  switch (stage) {
    case 'pretrain': {
      const text = readCorpus((o.corpus as string | undefined) ?? defaultCorpusPath());
      const init = o.init ? head(o.init as string) : undefined;
      const tok = init?.tokenizer ?? (o.tokenizer === 'gpt2' ? new Gpt2Tokenizer() : CharTokenizer.fromText(text));
      const config = init?.config ?? defaultConfig({ n_layer: o.layers as number, n_head: o.heads as number, n_embd: o.embd as number, n_positions: o.block as number, vocab_size: tok.vocabSize });
      const cfg = train({});
      return lmPlan({ config }, corpusData(Int32Array.from(tok.encode(text)), config.n_positions, cfg.batchSize), cfg, 0);
    }
    case 'sft': {
      const m = head(o.model as string), cfg = train(SFT_DEFAULTS);
      const p = prepareSft(data, m.tokenizer, m.config.n_positions + 1);
      return lmPlan(planned(m, o), sftData(p.train, p.evalSet, cfg, m.tokenizer.eot), cfg, 0);
    }
    case 'rm': {
      const m = head(o.model as string), cfg = train(RM_DEFAULTS);
      const p = prepareRm(data, m.tokenizer, m.config.n_positions);
      return rmPlan(planned(m, o), p.trainSet, p.evalSet, cfg, (o.threads as number | undefined) || 1, 0);
    }
    case 'dpo': {
      const m = head(o.model as string), cfg = train(DPO_TRAIN);
      const c: DpoConfig = { ...DEFAULT_DPO, beta: o.beta as number, loss: o.loss as DpoConfig['loss'], labelSmoothing: o['label-smoothing'] as number, kway: o.kway as DpoConfig['kway'] };
      return dpoPlan(planned(m, o), prepareDpo(data, m.tokenizer, m.config.n_positions), c, cfg, m.tokenizer.eot, 0);
    }
    case 'ppo':
    case 'grpo':
    case 'rloo': {
      const m = head(o.policy as string);
      const prompts = readPrompts(o.prompts as string);
      const promptTokens = prompts.reduce((a, p) => a + encodeContext(m.tokenizer, p).length, 0) / (prompts.length || 1);
      const scorer = o['reward-model'] ? { trunk: planned(head(o['reward-model'] as string), {}) } : undefined;
      if (stage === 'ppo') {
        const c = { ...DEFAULT_PPO, ...ppoConfig(o) };
        const critic = scorer && { trunk: planned(head(o['reward-model'] as string), o) };
        return rlPasses({ iterations: c.iterations, rows: c.promptsPerRollout * c.samplesPerPrompt, promptTokens, maxNewTokens: c.maxNewTokens, epochs: c.ppoEpochs, policy: planned(m, o), reference: true, rm: scorer, critic });
      }
      return rlPasses({
        iterations: o.iterations as number, rows: (o['prompts-per-step'] as number) * (o['num-generations'] as number), promptTokens, maxNewTokens: o['max-new-tokens'] as number,
        epochs: o['num-iterations'] as number, policy: planned(m, o), reference: (o.beta as number) > 0, rm: scorer,
      });
    }
    default:
      throw new Error(`no plan for "${stage}"`);
  }
}

/** Slurm's --time in seconds: M, M:S, H:M:S, D-H, D-H:M or D-H:M:S. */
export function slurmSeconds(t: string): number | undefined {
  const m = /^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$/.exec(t);
  if (!m) return undefined;
  const [days, a, b, c] = [m[1], m[2], m[3], m[4]].map((x) => (x === undefined ? undefined : Number(x)));
  if (days !== undefined) return days * 86400 + a! * 3600 + (b ?? 0) * 60 + (c ?? 0);
  if (c !== undefined) return a! * 3600 + b! * 60 + c;
  if (b !== undefined) return a! * 60 + b;
  return a! * 60;
}

/**
 * Where the time comes from: this machine's measured speed of the backend the stage will use (for
 * `auto` on a CPU node: native, else WebAssembly, else plain JavaScript, as auto chooses), or for a
 * GPU job the CUDA backend's when measured here, else A100s at rlhf cost's assumptions.
 */
function targetFor(params: number, r: Resources, gpu: string, backend: string): Target | string {
  const gpus = r.gpusPerNode ?? 0;
  const measured = (backend: string) => {
    const t = nearestSpeed('train', backend, params);
    if (!t) return undefined;
    const g = nearestSpeed('generate', backend, params);
    return { kind: 'local' as const, trainFlops: t.flops_per_second, generateFlops: g?.flops_per_second ?? t.flops_per_second, source: `this machine's ${backend} backend as measured by ${t.source}${gpus ? '' : '; the cluster\'s cores may be faster or slower'}` };
  };
  if (gpus > 0) {
    const m = measured('gpu');
    if (m) return m;
    const g = GPUS[gpu];
    return { kind: 'gpu', gpu: g, gpus: 1, mfu: DEFAULT_TRAIN_MFU, pricePerHour: g.pricePerHour, pue: DEFAULT_PUE, kwhPrice: DEFAULT_KWH_PRICE };
  }
  const candidates = backend && backend !== 'auto' ? [backend] : ['node', 'wasm', 'cpu'];
  for (const b of candidates) {
    const m = measured(b);
    if (m) return m;
  }
  return `no training speed of the ${candidates.join(' or ')} backend measured on this machine yet (rlhf bench train --backend ${candidates.at(-2) ?? candidates[0]} measures one)`;
}

export interface RunEstimate {
  runId: string;
  stage: string;
  flops: number;
  /** Undefined when this machine has measured no speed to convert FLOPs to time. */
  seconds?: number;
  dollars?: number;
  line: string;
}

/** One line per run: FLOPs, time, and, with GPUs, GPU-hours and dollars; beside the time limit. */
export function estimateRuns(runs: { runId: string; stage: string; backend: string; passes: Pass[] }[], r: Resources, gpu: string): RunEstimate[] {
  const limit = r.time ? slurmSeconds(r.time) : undefined;
  return runs.map(({ runId, stage, backend, passes }) => {
    const flops = passes.reduce((a, p) => a + passFlops(p), 0);
    const target = targetFor(passes[0].model.params, r, gpu, backend);
    if (typeof target === 'string') return { runId, stage, flops, line: `${runId} (${stage}): estimated cost: ${fmtFlops(flops)}; ${target}` };
    const e = estimateCost(passes, target);
    const asked = r.gpusPerNode ?? 0;
    if (target.kind === 'gpu' && asked > 1) {
      // the engine trains on one GPU: the others the job holds are paid for all the same
      e.gpu_hours! *= asked;
      e.dollars! *= asked;
      e.assumptions.push(`the engine trains on one GPU: the job's ${asked} are paid for`);
    }
    let vsLimit = '';
    if (limit !== undefined) {
      const usable = limit - 120; // the stage stops 2 minutes before the limit, at a checkpoint
      vsLimit = e.seconds <= usable
        ? `; within the time limit (${fmtSeconds(limit)})`
        : `; more than the time limit (${fmtSeconds(limit)}): the job stops at a checkpoint 2 minutes before it and requeues itself, about ${Math.ceil(e.seconds / Math.max(60, usable)) - 1} time(s)`;
    }
    return { runId, stage, flops: e.flops, seconds: e.seconds, dollars: e.dollars, line: `${runId} (${stage}): ${costLine(e)}${vsLimit}` };
  });
}
