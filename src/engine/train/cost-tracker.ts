/**
 * A run's cost, before and after: the line before the first step (FLOPs of the passes the stage
 * plans, time at this machine's measured speed) and, at the end, what the run took beside it in
 * run.json (the Runs view's tooltip reads it). A gradient stage's own speed then joins the
 * measurements later estimates use (speed-cache.ts).
 */
import { RunDir } from '../../data/run';
import { Pass, costLine, estimateCost, fmtCount, fmtFlops, passFlops } from '../cost';
import { nearestSpeed, recordSpeed } from '../speed-cache';
import { currentBackend } from '../backends/backend';

export interface CostFinish {
  /** Tokens trained (gradient stages): the actual FLOPs are the plan's in proportion. */
  trainedTokens?: number;
  /** Seconds of the optimizer steps alone (no evaluation): the run's own training speed. */
  stepSeconds?: number;
  threads?: number;
  /** Generated tokens over the plan's (RL stages: responses that end before the limit). */
  generatedShare?: number;
}

export function startCost(run: RunDir, passes: Pass[] | undefined, log?: (line: string) => void) {
  if (!passes?.length) return undefined;
  const backend = currentBackend()?.name ?? 'unknown';
  const model = passes[0].model;
  const train = nearestSpeed('train', backend, model.params);
  const gen = nearestSpeed('generate', backend, model.params);
  const flops = passes.reduce((a, p) => a + passFlops(p), 0);
  const plannedTrainTokens = passes.filter((p) => p.kind === 'train').reduce((a, p) => a + p.tokens, 0);
  const generates = passes.some((p) => p.kind === 'generate');
  if (train) {
    const at = (m: NonNullable<typeof train>) => `${fmtFlops(m.flops_per_second)}/s measured by ${m.source} at ${fmtCount(m.params)} parameters`;
    const source = `training ${at(train)}${generates ? (gen ? `; generation ${at(gen)}` : '; generation at the training speed (rlhf bench generate measures its own)') : ''}`;
    const e = estimateCost(passes, { kind: 'local', trainFlops: train.flops_per_second, generateFlops: gen?.flops_per_second ?? train.flops_per_second, source });
    log?.(costLine(e));
    run.update({ cost: { estimate: { flops: e.flops, seconds: e.seconds, source } } });
  } else {
    log?.(`estimated cost: ${fmtFlops(flops)}; no training speed measured on this machine for the ${backend} backend yet, so no time (rlhf bench train measures one, and so does a training run)`);
    run.update({ cost: { estimate: { flops, seconds: NaN, source: 'no measured speed' } } });
  }
  const started = performance.now();
  return {
    finish(f: CostFinish) {
      const seconds = (performance.now() - started) / 1000;
      const trainShare = f.trainedTokens !== undefined && plannedTrainTokens ? f.trainedTokens / plannedTrainTokens : 1;
      const actual = passes.reduce((a, p) => a + passFlops(p) * (p.kind === 'train' ? trainShare : p.kind === 'generate' ? f.generatedShare ?? 1 : 1), 0);
      const tokens = f.trainedTokens ?? passes.reduce((a, p) => a + p.tokens, 0);
      run.update({ cost: { ...(run.read().cost ?? {}), actual: { flops: actual, seconds, tokens } } });
      if (f.stepSeconds && f.trainedTokens !== undefined && !generates) {
        const trainFlops = passes.filter((p) => p.kind === 'train').reduce((a, p) => a + passFlops(p), 0) * trainShare;
        recordSpeed({ kind: 'train', backend, threads: f.threads ?? 1, params: model.params, flops_per_second: trainFlops / f.stepSeconds, source: `run ${run.read().id}` });
      }
    },
  };
}
