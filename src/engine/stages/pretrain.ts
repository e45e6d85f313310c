/**
 * Pretraining: next-token prediction on a text corpus (plain text, or JSONL of {"text"}).
 * Batches are random windows of n_positions + 1 tokens, as in nanoGPT; the last 10% of the
 * corpus is held out for eval/loss.
 */
import * as path from 'path';
import { CausalLM, initModel } from '../causal-lm';
import { ModelConfig, defaultConfig } from '../config';
import { CharTokenizer, Gpt2Tokenizer, Tokenizer } from '../tokenizer';
import { Rng, deriveSeed } from '../rng';
import { RunDir } from '../../data/run';
import { loadModel } from '../checkpoint';
import { LmData, TrainConfig, lmObjective, train as trainLoop } from '../train/trainer';
import { Batch } from '../train/batch';
import { readJsonl, formatProblem } from '../../data/jsonl';
import { readRegularFile } from '../../data/durable';
import { isUtf8 } from 'buffer';
import { autoThreads } from '../train/parallel';
import { DEFAULT_TRAIN, checkRecorded, StageHooks, assertFile, openResume, runLifecycle } from './common';

export interface PretrainOptions {
  corpus: string;
  /** Continue from this model; otherwise a new model of `model` shape. */
  init?: string;
  model?: Partial<ModelConfig>;
  train?: Partial<TrainConfig>;
  runsDir: string;
  runId?: string;
}

export function readCorpus(file: string): string {
  assertFile(file, 'corpus');
  if (file.endsWith('.jsonl')) {
    const { records, problems } = readJsonl(file);
    if (problems.length) throw new Error(formatProblem(problems[0]));
    return records.map((r) => String(r.value.text ?? '')).join('\n\n');
  }
  const bytes = readRegularFile(file, 2 ** 30);
  if (!isUtf8(bytes)) {
    // the validator's answer: the first line that is not UTF-8
    let line = 1;
    for (let start = 0; ; line++) {
      const nl = bytes.indexOf(10, start);
      if (!isUtf8(bytes.subarray(start, nl < 0 ? bytes.length : nl))) break;
      start = nl + 1;
    }
    throw new Error(`${file}:${line}: invalid UTF-8`);
  }
  return bytes.toString('utf8').replace(/^\uFEFF/, '');
}

export function corpusData(tokens: Int32Array, T: number, batchSize: number, evalBatches = 4): LmData {
  const nTrain = Math.floor(tokens.length * 0.9);
  if (nTrain < T + 2 || tokens.length - nTrain < T + 2) {
    throw new Error(`the corpus has ${tokens.length} tokens, too few for windows of ${T + 1}`);
  }
  const window = (start: number, b: Batch, r: number) => {
    b.ids.set(tokens.subarray(start, start + T), r * T);
    b.targets.set(tokens.subarray(start + 1, start + T + 1), r * T);
  };
  const make = (B: number): Batch => ({ ids: new Int32Array(B * T), targets: new Int32Array(B * T), weights: new Float32Array(B * T).fill(1), B, T });
  const evalSet: Batch[] = [];
  const er = new Rng(deriveSeed(7, tokens.length));
  for (let i = 0; i < evalBatches; i++) {
    const b = make(batchSize);
    for (let r = 0; r < batchSize; r++) window(nTrain + er.int(tokens.length - nTrain - T - 1), b, r);
    evalSet.push(b);
  }
  return {
    trainBatch(_step, _micro, rng) {
      const b = make(batchSize);
      for (let r = 0; r < batchSize; r++) window(rng.int(nTrain - T - 1), b, r);
      return b;
    },
    evalBatches: () => evalSet,
  };
}

export async function pretrain(o: PretrainOptions, hooks: StageHooks = {}) {
  const text = readCorpus(o.corpus);
  let model: CausalLM, tokenizer: Tokenizer;
  if (o.init) {
    ({ model, tokenizer } = loadModel(o.init));
  } else {
    const kind = o.model?.tokenizer ?? 'char';
    tokenizer = kind === 'gpt2' ? new Gpt2Tokenizer() : CharTokenizer.fromText(text);
    const cfg = defaultConfig({ ...o.model, vocab_size: tokenizer.vocabSize });
    model = initModel(cfg, (o.train?.seed ?? DEFAULT_TRAIN.seed) + 1);
  }
  const train: TrainConfig = { ...DEFAULT_TRAIN, ...o.train };
  train.threads ||= autoThreads(); // recorded, so a resume splits batches the same way
  const run = RunDir.create(o.runsDir, {
    stage: 'pretrain',
    config: { corpus: path.resolve(o.corpus), model: model.config, train, init: o.init ? path.resolve(o.init) : null },
    parent_model: o.init ? path.resolve(o.init) : null,
  }, o.runId);
  hooks.log?.(`run ${run.dir}: ${model.numParameters.toLocaleString('en')} parameters, ${tokenizer.kind} tokenizer (${tokenizer.vocabSize} tokens)`);
  return continuePretrain(run, model, tokenizer, text, train, hooks);
}

async function continuePretrain(run: RunDir, model: CausalLM, tokenizer: Tokenizer, text: string, train: TrainConfig, hooks: StageHooks, resume?: { step: number; dir: string }) {
  const tokens = Int32Array.from(tokenizer.encode(text));
  const data = corpusData(tokens, model.config.n_positions, train.batchSize);
  try {
    return await runLifecycle(run, () =>
      lmObjective('pretrain', model, tokenizer, data, train).then((objective) => trainLoop({ objective, cfg: train, run, resume, ...hooks })),
    );
  } finally {
    model.dispose();
  }
}

export async function resumePretrain(runDir: string, hooks: StageHooks = {}) {
  const { run, config, point, markResumed } = openResume<{ corpus: string; train: TrainConfig }>(runDir, hooks);
  checkRecorded(config.train, DEFAULT_TRAIN, 'config.train');
  const { model, tokenizer } = loadModel(point.dir);
  markResumed();
  return continuePretrain(run, model, tokenizer, readCorpus(config.corpus), config.train, hooks, point);
}
