/**
 * rlhf cost: what training a model on a number of tokens costs (FLOPs, time, GPU-hours, energy,
 * money) on this machine at its measured speed or on GPUs; rlhf cost serve: what serving a chat
 * model to a daily audience needs. Every assumption is printed with the figures.
 */
import * as fs from 'fs';
import * as path from 'path';
import { OptSpecs, ParsedOpts, UsageError } from '../args';
import { Reporter } from '../progress';
import { configFromJson } from '../../engine/config';
import { resolveModelPath } from '../../data/hub-cache';
import {
  DEFAULT_KWH_PRICE, DEFAULT_PUE, DEFAULT_SERVE, DEFAULT_TRAIN_MFU, GPUS, KNOWN_MODELS, ModelShape, Target,
  costLine, estimateCost, estimateServing, fmtCount, fmtFlops, shapeOfConfig,
} from '../../engine/cost';
import { nearestSpeed, readSpeeds, speedCacheFile } from '../../engine/speed-cache';

export const COST_OPTS: OptSpecs = {
  model: { type: 'string', help: `a model folder, a Hub id in the cache, or one of ${Object.keys(KNOWN_MODELS).join(', ')}` },
  tokens: { type: 'number', help: 'training tokens (300e9 is fine)' },
  'lora-r': { type: 'int', help: 'train a LoRA adapter of this rank instead of every weight', default: 0 },
  context: { type: 'int', help: 'sequence length of training (default: the model\'s context, at most 2048)' },
  gpu: { type: 'string', help: `local (this machine at its measured speed) or ${Object.keys(GPUS).join(', ')}`, default: 'local' },
  gpus: { type: 'int', help: 'GPUs working at once', default: 1 },
  mfu: { type: 'number', help: `model-FLOPs utilisation on the GPU (default ${DEFAULT_TRAIN_MFU} for training, ${DEFAULT_SERVE.mfu} for serving)` },
  price: { type: 'number', help: 'US dollars per GPU-hour (default: the GPU\'s in cost.ts)' },
  pue: { type: 'number', help: 'power usage effectiveness of the data centre', default: DEFAULT_PUE },
  'kwh-price': { type: 'number', help: 'US dollars per kWh', default: DEFAULT_KWH_PRICE },
  backend: { type: 'string', help: 'with --gpu local: whose measured speed (default: the latest measured)' },
  'daily-users': { type: 'number', help: 'serve: users a day' },
  'requests-per-user': { type: 'number', help: 'serve: requests per user a day', default: DEFAULT_SERVE.requestsPerUser },
  'prompt-tokens': { type: 'number', help: 'serve: prompt tokens per request (the conversation so far)', default: DEFAULT_SERVE.promptTokens },
  'response-tokens': { type: 'number', help: 'serve: response tokens per request', default: DEFAULT_SERVE.responseTokens },
  'peak-factor': { type: 'number', help: 'serve: the peak hour\'s traffic over the average', default: DEFAULT_SERVE.peakFactor },
  json: { type: 'boolean', help: 'the estimate as one JSON object on stdout' },
  help: { type: 'boolean', help: 'show this help' },
};

/** A known name, or a model folder's config.json (no weights are read). */
export function modelShape(nameOrDir: string): ModelShape {
  const known = KNOWN_MODELS[nameOrDir.toLowerCase()];
  if (known) return known;
  const dir = resolveModelPath(nameOrDir);
  const file = dir && path.join(dir, 'config.json');
  if (!file || !fs.existsSync(file)) throw new Error(`--model ${nameOrDir}: neither a known model (${Object.keys(KNOWN_MODELS).join(', ')}) nor a model folder with a config.json`);
  return shapeOfConfig(configFromJson(JSON.parse(fs.readFileSync(file, 'utf8'))), path.basename(dir!));
}

/** This machine's measured speed for a model of `params` (rlhf bench and finished runs record it). */
export function localTarget(params: number, backend?: string): Target {
  const all = readSpeeds();
  const b = backend ?? all[all.length - 1]?.backend;
  const train = b ? nearestSpeed('train', b, params) : undefined;
  if (!train) throw new Error(`no training speed measured on this machine${backend ? ` for the ${backend} backend` : ''} yet (${speedCacheFile()}): run rlhf bench train, or choose a GPU with --gpu ${Object.keys(GPUS).join('|')}`);
  const gen = nearestSpeed('generate', b!, params);
  const at = (m: typeof train) => `${fmtFlops(m.flops_per_second)}/s measured by ${m.source} on ${m.backend} at ${fmtCount(m.params)} parameters`;
  return {
    kind: 'local',
    trainFlops: train.flops_per_second,
    generateFlops: gen?.flops_per_second ?? train.flops_per_second,
    source: `training ${at(train)}${gen ? `; generation ${at(gen)}` : ''}`,
  };
}

export function gpuTarget(o: ParsedOpts, mfuDefault: number): Target {
  const gpu = GPUS[String(o.gpu).toLowerCase()];
  if (!gpu) throw new UsageError(`--gpu must be local or one of ${Object.keys(GPUS).join(', ')}, not "${o.gpu}"`);
  const gpus = o.gpus as number;
  if (!(gpus >= 1)) throw new UsageError('--gpus must be at least 1');
  const mfu = (o.mfu as number | undefined) ?? mfuDefault;
  if (!(mfu > 0 && mfu <= 1)) throw new UsageError('--mfu must be in (0, 1]');
  return { kind: 'gpu', gpu, gpus, mfu, pricePerHour: (o.price as number | undefined) ?? gpu.pricePerHour, pue: o.pue as number, kwhPrice: o['kwh-price'] as number };
}

export async function costCommand(o: ParsedOpts, positional: string[], r: Reporter) {
  if (positional[0] === 'serve') return serveCommand(o, r);
  if (positional.length) throw new UsageError(`rlhf cost: unknown "${positional[0]}" (rlhf cost --model M --tokens N, or rlhf cost serve)`);
  if (!o.model) throw new UsageError('rlhf cost needs --model (a folder, a Hub id or a known name such as gpt3-175b)');
  const tokens = o.tokens as number | undefined;
  if (!(tokens !== undefined && tokens > 0)) throw new UsageError('rlhf cost needs --tokens, the training tokens (300e9 is fine)');
  const model = modelShape(o.model as string);
  const context = (o.context as number | undefined) ?? Math.min(model.context, 2048);
  const loraR = o['lora-r'] as number;
  // a LoRA adapter on every projection: r (in + out) per projection, about 2 r / C of the block's weights
  const loraParams = loraR > 0 ? Math.round((model.params * 2 * loraR) / model.width / 6) : undefined;
  const target = o.gpu === 'local' ? localTarget(model.params, o.backend as string | undefined) : gpuTarget(o, DEFAULT_TRAIN_MFU);
  const e = estimateCost([{ what: 'training', kind: 'train', model, tokens, context, loraParams }], target);
  const out = { model: model.name, parameters: model.params, tokens, context, lora_r: loraR, ...e };
  if (o.json) process.stdout.write(JSON.stringify(out) + '\n');
  else {
    r.log(`${model.name}: ${fmtCount(model.params)} parameters, ${fmtCount(tokens)} tokens of ${context}${loraR ? `, LoRA r=${loraR}` : ''}`);
    r.log(costLine(e).replace(/^estimated cost: /, '  '));
  }
  return out;
}

function serveCommand(o: ParsedOpts, r: Reporter) {
  if (!o.model) throw new UsageError('rlhf cost serve needs --model (a folder, a Hub id or a known name such as gpt3-175b)');
  const users = o['daily-users'] as number | undefined;
  if (!(users !== undefined && users > 0)) throw new UsageError('rlhf cost serve needs --daily-users (13e6 is fine)');
  if (o.gpu === 'local') throw new UsageError('rlhf cost serve needs a GPU: --gpu a100, h100 or h200');
  const t = gpuTarget(o, DEFAULT_SERVE.mfu);
  if (t.kind !== 'gpu') throw new Error('unreachable');
  const model = modelShape(o.model as string);
  const s = estimateServing(model, t.gpu, {
    dailyUsers: users, requestsPerUser: o['requests-per-user'] as number, promptTokens: o['prompt-tokens'] as number, responseTokens: o['response-tokens'] as number,
    peakFactor: o['peak-factor'] as number, mfu: t.mfu, pue: t.pue, kwhPrice: t.kwhPrice,
  });
  const out = { model: model.name, gpu: t.gpu.name, ...s };
  if (o.json) process.stdout.write(JSON.stringify(out) + '\n');
  else {
    r.log(`serving ${model.name}: ${fmtCount(s.tokens_per_day)} tokens a day, ${fmtFlops(s.flops_per_day)} a day`);
    r.log(`  ${fmtCount(s.gpus)} GPUs (${t.gpu.name}), $${fmtCount(s.hardware_dollars)} of hardware, ${fmtCount(s.kwh_per_day)} kWh and $${fmtCount(s.electricity_dollars_per_day)} of electricity a day`);
    for (const a of s.assumptions) r.log(`  assumed: ${a}`);
  }
  return out;
}
