/** rlhf merge-lora: an adapter folder's base with the update added, written as a whole model. */
import * as path from 'path';
import { OptSpecs, ParsedOpts, UsageError } from '../args';
import { Reporter } from '../progress';
import { COMMON } from './shared';
import { readModelDir, writeModelDir } from '../../engine/checkpoint';
import { mergedWeights } from '../../engine/stages/model-setup';
import { FloatDtype } from '../../engine/safetensors';

export const MERGE_LORA_OPTS: OptSpecs = {
  adapter: { type: 'string', help: 'the adapter folder (adapter_config.json + adapter_model.safetensors)' },
  out: { type: 'string', help: 'the folder for the merged model' },
  dtype: { type: 'string', help: 'f32, bf16 or f16 (default: the base model\'s)' },
  ...COMMON,
};

const DTYPES: Record<string, FloatDtype> = { f32: 'F32', bf16: 'BF16', f16: 'F16' };

export async function mergeLoraCommand(o: ParsedOpts, r: Reporter) {
  if (!o.adapter) throw new UsageError('rlhf merge-lora needs --adapter DIR');
  if (!o.out) throw new UsageError('rlhf merge-lora needs --out DIR');
  if (o.dtype !== undefined && !(String(o.dtype) in DTYPES)) throw new UsageError('--dtype must be f32, bf16 or f16');
  const loaded = readModelDir(o.adapter as string);
  if (!loaded.adapter) throw new Error(`${o.adapter} is not an adapter folder (no adapter_config.json): nothing to merge`);
  const dtype = o.dtype ? DTYPES[o.dtype as string] : loaded.dtype;
  const weights = mergedWeights(loaded);
  const score = ['score.weight', 'score.bias'].filter((k) => loaded.extra.has(k));
  writeModelDir(path.resolve(o.out as string), loaded.config, weights, loaded.tokenizer, {
    dtype,
    extra: new Map(score.map((k) => [k, loaded.extra.get(k)!])),
    extraConfig: { ...Object.fromEntries(Object.entries(loaded.rawConfig).filter(([k]) => k.startsWith('reward_'))), merged_from: path.resolve(o.adapter as string) },
  });
  r.log(`merged ${loaded.adapter.weights.size} adapted projections (r=${loaded.adapter.cfg.r}) into ${loaded.adapter.base}: ${path.resolve(o.out as string)} (${dtype})`);
  return { out: path.resolve(o.out as string) };
}
