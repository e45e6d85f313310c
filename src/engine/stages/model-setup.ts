/**
 * The model a stage trains, from the folder it starts from: the whole model, or with --lora-r a
 * new LoRA adapter on frozen base weights. A folder that is itself an adapter is merged into its
 * base first (as TRL advises before PPO or DPO on a PEFT SFT model); with a new adapter on top,
 * that merged base is written once into the run folder (base-model/), so the run's adapters name
 * a base that exists on disk.
 */
import * as path from 'path';
import { CausalLM, createModel, parameterShapes } from '../causal-lm';
import { LoadedModel, writeModelDir } from '../checkpoint';
import { Lora, LoraConfig, loraConfig, mergeAdapter, targetModules } from '../lora';

export type LoraOptions = Partial<LoraConfig> & { r: number };

/** The weights of a folder with its adapter (if any) merged in. */
export function mergedWeights(loaded: LoadedModel): Map<string, Float32Array> {
  return loaded.adapter ? mergeAdapter(loaded.weights, loaded.adapter.cfg, loaded.adapter.weights) : loaded.weights;
}

export async function startModel(loaded: LoadedModel, lora: LoraOptions | undefined, runDir: string, seed: number, baseName = 'base-model'): Promise<CausalLM> {
  const weights = mergedWeights(loaded);
  let baseDir = loaded.dir;
  if (loaded.adapter && lora) {
    baseDir = path.join(runDir, baseName);
    writeModelDir(baseDir, loaded.config, weights, loaded.tokenizer, { extraConfig: { merged_from: path.resolve(loaded.dir) } });
  }
  const model = createModel(loaded.config, weights, !lora);
  if (lora) {
    const cfg = loraConfig(loaded.config.arch ?? 'gpt2', lora);
    const l = new Lora(cfg, targetModules(parameterShapes(loaded.config), cfg.targets), seed);
    l.base = path.resolve(baseDir);
    model.attachLora(l);
  }
  return model;
}

