/**
 * Model directories as Transformers reads them (config.json, model.safetensors or its shards,
 * the tokenizer's files), GPT-2 and the Llama family; written atomically: into a temporary sibling folder,
 * fsynced, then renamed into place, so a crash mid-write never leaves a half checkpoint.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as os from 'os';
import { ModelConfig, configFromJson, configToJson, parameterCount } from './config';
import { openRegular, readRegularFile } from '../data/durable';
import { CausalLM, createModel, parameterShapes } from './causal-lm';
import { FloatDtype, NamedTensor, readSafetensors, serializeSafetensors } from './safetensors';
import { Tokenizer, loadTokenizer, tokenizerFiles } from './tokenizer';
import { isLlama } from './causal-lm';
import { isLinearWeight, llamaHfName, transpose2d } from './llama';
import { hubCacheDir, looksLikeRepoId, resolveModelPath } from '../data/hub-cache';
import { Lora, LoraConfig, fromPeftTensors, loraConfig, peftConfig, peftTensors, targetModules } from './lora';
import { writeDirAtomic, writeFileSynced } from '../data/durable';

export { writeDirAtomic, writeFileSynced };

export class ModelDirError extends Error {}

export interface LoadedModel {
  config: ModelConfig;
  weights: Map<string, Float32Array>;
  tokenizer: Tokenizer;
  /** Extra tensors found (e.g. score.weight of reward models), without the "transformer." prefix. */
  extra: Map<string, NamedTensor>;
  /** config.json as read, for keys other stages add (reward statistics, ...). */
  rawConfig: Record<string, unknown>;
  /** The dtype the weights were stored in (converted to float32 on load). */
  dtype: FloatDtype;
  /** The folder read. */
  dir: string;
  /** When the folder is a LoRA adapter (PEFT layout): its settings and weights; config and weights are its base model's. */
  adapter?: { cfg: LoraConfig; weights: Map<string, { A: Float32Array; B: Float32Array }>; base: string };
}

const fmtCount = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(1)}B` : n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : String(n));

/** The safetensors files of a model folder: model.safetensors, or the shards its index names. */
function weightFiles(dir: string): string[] {
  const single = path.join(dir, 'model.safetensors');
  if (fs.existsSync(single)) return [single];
  const indexFile = path.join(dir, 'model.safetensors.index.json');
  if (!fs.existsSync(indexFile)) throw new ModelDirError(`${dir} has no model.safetensors (nor model.safetensors.index.json)`);
  let index: { weight_map?: Record<string, unknown> };
  try {
    index = JSON.parse(readRegularFile(indexFile, 64 << 20).toString('utf8'));
  } catch (e) {
    throw new ModelDirError(`${indexFile}: ${(e as Error).message.split('\n')[0]}`);
  }
  const shards = [...new Set(Object.values(index.weight_map ?? {}))];
  if (!shards.length || !shards.every((f) => typeof f === 'string' && /^[\w.-]+\.safetensors$/.test(f))) {
    throw new ModelDirError(`${indexFile}: weight_map must map tensor names to .safetensors files in the same folder`);
  }
  return (shards as string[]).map((f) => path.join(dir, f));
}

/**
 * Checkpoint tensor name -> ours, or undefined for a tensor of another layout. GPT-2 drops
 * GPT2LMHeadModel's "transformer."; the Llama family drops "model.". A score head stays.
 */
function ourName(config: ModelConfig, name: string): string {
  if (isLlama(config)) return name.startsWith('model.') ? name.slice(6) : name;
  return name.startsWith('transformer.') ? name.slice(12) : name;
}

/** Our own keys of an adapter folder (reward statistics, the stage that made it), beside PEFT's files. */
const ADAPTER_EXTRA = 'rlhf_model.json';

/** An adapter's base_model_name_or_path: a folder (relative to the adapter's), or a Hub id in the cache. */
const resolveBase = (p: string, from: string): string => resolveModelPath(p, from) ?? path.resolve(from, p);

/** config.json of a model folder, parsed and checked; every failure is one ModelDirError line. */
function readConfig(dir: string): { rawConfig: Record<string, unknown>; config: ModelConfig } {
  const cfgFile = path.join(dir, 'config.json');
  if (!fs.existsSync(cfgFile)) throw new ModelDirError(`${dir} has no config.json (not a model directory)`);
  let rawConfig: Record<string, unknown>;
  let text: string;
  try {
    text = readRegularFile(cfgFile, 1 << 20).toString('utf8');
  } catch (e) {
    throw new ModelDirError((e as Error).message);
  }
  try {
    rawConfig = JSON.parse(text);
  } catch {
    throw new ModelDirError(`${cfgFile} is not valid JSON`);
  }
  if (rawConfig === null || typeof rawConfig !== 'object' || Array.isArray(rawConfig)) throw new ModelDirError(`${cfgFile} must hold a JSON object`);
  try {
    return { rawConfig, config: configFromJson(rawConfig) };
  } catch (e) {
    throw new ModelDirError(`${cfgFile}: ${(e as Error).message.replace(/^config.json: /, '')}`);
  }
}

function readTokenizer(config: ModelConfig, dir: string): Tokenizer {
  try {
    const eos = config.llama?.eos_token_id;
    return loadTokenizer(config.tokenizer, dir, Array.isArray(eos) ? eos[0] : eos);
  } catch (e) {
    throw new ModelDirError((e as Error).message);
  }
}

/** An adapter folder's adapter_config.json, parsed, and the base model it names (one line when it names none). */
function readAdapterConfig(dir: string): { file: string; ac: Record<string, unknown>; base: string } {
  const file = path.join(dir, 'adapter_config.json');
  let ac: Record<string, unknown>;
  try {
    ac = JSON.parse(readRegularFile(file, 1 << 20).toString('utf8'));
  } catch (e) {
    throw new ModelDirError(`${file}: ${(e as Error).message.split('\n')[0]}`);
  }
  if (typeof ac?.base_model_name_or_path !== 'string' || !ac.base_model_name_or_path) throw new ModelDirError(`${file}: base_model_name_or_path names no base model (rlhf import DIR --base MODEL makes a copy that names one)`);
  return { file, ac, base: ac.base_model_name_or_path };
}

/**
 * What a plan needs of a model folder (a Hub id in the cache, or a LoRA adapter folder: its base's),
 * without reading a weight: the config, the tokenizer, and an adapter's rank.
 */
export function readModelHead(dirOrId: string): { config: ModelConfig; tokenizer: Tokenizer; adapterR?: number } {
  const dir = fs.existsSync(dirOrId) ? dirOrId : resolveModelPath(dirOrId) ?? dirOrId;
  if (!fs.existsSync(path.join(dir, 'config.json')) && fs.existsSync(path.join(dir, 'adapter_config.json'))) {
    const { ac, base } = readAdapterConfig(dir);
    return { ...readModelHead(resolveBase(base, dir)), adapterR: Number(ac.r) };
  }
  const { config } = readConfig(dir);
  return { config, tokenizer: readTokenizer(config, dir) };
}

/** A PEFT LoRA adapter folder: its base model (read as any model folder) with the adapter's weights. */
function readAdapterDir(dir: string): LoadedModel {
  const { file, ac, base: baseName } = readAdapterConfig(dir);
  if (ac.peft_type !== 'LORA') throw new ModelDirError(`${file}: peft_type "${String(ac.peft_type)}" is not supported (only LORA)`);
  if (!Array.isArray(ac.target_modules)) throw new ModelDirError(`${file}: target_modules must be a list of module names (a regular expression is not supported)`);
  if (ac.use_dora === true) throw new ModelDirError(`${file}: DoRA adapters are not supported`);
  const baseDir = resolveBase(baseName, dir);
  if (!fs.existsSync(path.join(baseDir, 'config.json'))) throw new ModelDirError(`${dir}: the adapter's base model ${baseName} is not there (${baseDir}); download it or fix base_model_name_or_path`);
  const base = readModelDir(baseDir);
  if (base.adapter) throw new ModelDirError(`${dir}: the base model ${baseDir} is itself an adapter; merge it first (rlhf merge-lora)`);
  let lcfg: LoraConfig;
  try {
    lcfg = loraConfig(base.config.arch ?? 'gpt2', { r: Number(ac.r), alpha: Number(ac.lora_alpha), dropout: Number(ac.lora_dropout ?? 0), targets: ac.target_modules as string[] });
  } catch (e) {
    throw new ModelDirError(`${file}: ${(e as Error).message.replace(/--lora-/g, '')}`);
  }
  const stFile = path.join(dir, 'adapter_model.safetensors');
  let tensors: Map<string, NamedTensor>;
  try {
    tensors = readSafetensors(stFile).tensors;
  } catch (e) {
    throw new ModelDirError((e as Error).message);
  }
  let weights: Map<string, { A: Float32Array; B: Float32Array }>, rest: Map<string, NamedTensor>;
  try {
    ({ weights, rest } = fromPeftTensors(base.config, tensors, targetModules(parameterShapes(base.config), lcfg.targets), lcfg.r));
  } catch (e) {
    throw new ModelDirError(`${dir}: ${(e as Error).message}`);
  }
  const extraFile = path.join(dir, ADAPTER_EXTRA);
  const extraConfig = fs.existsSync(extraFile) ? (JSON.parse(readRegularFile(extraFile, 1 << 20).toString('utf8')) as Record<string, unknown>) : {};
  let tokenizer = base.tokenizer;
  if (fs.existsSync(path.join(dir, 'tokenizer.json'))) {
    try {
      const eos = base.config.llama?.eos_token_id;
      tokenizer = loadTokenizer(base.config.tokenizer, dir, Array.isArray(eos) ? eos[0] : eos);
    } catch (e) {
      throw new ModelDirError((e as Error).message);
    }
  }
  if (tokenizer.vocabSize > base.config.vocab_size) throw new ModelDirError(`${dir}: the tokenizer has ${tokenizer.vocabSize} tokens but the base model's vocab_size is ${base.config.vocab_size}`);
  return { ...base, dir, tokenizer, extra: new Map([...base.extra, ...rest]), rawConfig: { ...base.rawConfig, ...extraConfig }, adapter: { cfg: lcfg, weights, base: baseDir } };
}

export function readModelDir(dirOrId: string): LoadedModel {
  // a Hub id ("HuggingFaceTB/SmolLM2-135M-Instruct") is read from the cache, without the network
  const dir = fs.existsSync(dirOrId) ? dirOrId : resolveModelPath(dirOrId) ?? dirOrId;
  const cfgFile = path.join(dir, 'config.json');
  if (!fs.existsSync(dir) && looksLikeRepoId(dirOrId) && dirOrId.includes('/')) {
    throw new ModelDirError(`${dirOrId} is neither a folder nor a model in the Hugging Face cache (${hubCacheDir()}); download it first: rlhf download ${dirOrId}`);
  }
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new ModelDirError(`model directory not found: ${dir}`);
  if (!fs.existsSync(cfgFile) && fs.existsSync(path.join(dir, 'adapter_config.json'))) return readAdapterDir(dir);
  const { rawConfig, config } = readConfig(dir);
  const files = weightFiles(dir);
  // the memory the weights take, known before a byte of them is read: refuse what cannot fit
  const params = parameterCount(config);
  let fileBytes = 0;
  for (const file of files) {
    try {
      const f = openRegular(file); // a FIFO or a device (a link to /dev/zero) is refused here
      fs.closeSync(f.fd);
      fileBytes += f.size;
    } catch (e) {
      throw new ModelDirError((e as Error).message);
    }
  }
  const where = files.length === 1 ? path.basename(files[0]) : `its ${files.length} safetensors shards`;
  if (params * 2 > fileBytes) throw new ModelDirError(`${cfgFile} describes ${fmtCount(params)} parameters, but ${where} ${files.length === 1 ? 'has' : 'have'} only ${fileBytes} bytes`);
  const need = params * 4 + fileBytes;
  if (need > os.totalmem() * 0.8) throw new ModelDirError(`${dir}: loading ${fmtCount(params)} parameters needs about ${(need / 2 ** 30).toFixed(1)} GiB; this machine has ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`);
  const byName = new Map<string, NamedTensor>();
  const fileOf = new Map<string, string>();
  for (const file of files) {
    let tensors: Map<string, NamedTensor>;
    try {
      tensors = readSafetensors(file).tensors;
    } catch (e) {
      throw new ModelDirError((e as Error).message);
    }
    for (const [name, t] of tensors) {
      const ours = ourName(config, name);
      byName.set(ours, t);
      fileOf.set(ours, file);
    }
  }
  const weights = new Map<string, Float32Array>();
  const dtypes = new Set<string>();
  for (const [name, shape] of parameterShapes(config)) {
    const t = byName.get(name);
    const stFile = fileOf.get(name) ?? files[0];
    // Transformers' nn.Linear is [out, in]; we hold [in, out]
    const linear = isLlama(config) && isLinearWeight(name);
    const stored = linear ? [shape[1], shape[0]] : shape;
    if (!t) {
      if (isLlama(config) && name === 'lm_head.weight') throw new ModelDirError(`${dir}: config.json has tie_word_embeddings false but the checkpoint has no lm_head.weight`);
      throw new ModelDirError(`${where} has no tensor ${isLlama(config) ? llamaHfName(name) : name}`);
    }
    if (t.shape.join(',') !== stored.join(',')) {
      throw new ModelDirError(`${stFile}: ${isLlama(config) ? llamaHfName(name) : name} has shape [${t.shape}], config.json implies [${stored}]`);
    }
    const bad = t.data.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) throw new ModelDirError(`${stFile}: ${name} holds ${t.data[bad]} at index ${bad}; the weights are corrupt (a diverged run?)`);
    weights.set(name, linear ? transpose2d(t.data, stored[0], stored[1]) : t.data);
    if (t.dtype) dtypes.add(t.dtype);
    byName.delete(name);
  }
  if (isLlama(config) && config.llama!.tie_word_embeddings) byName.delete('lm_head.weight'); // a tied copy some exports keep
  const tokenizer = readTokenizer(config, dir);
  if (tokenizer.vocabSize > config.vocab_size) {
    throw new ModelDirError(`${dir}: the tokenizer has ${tokenizer.vocabSize} tokens but vocab_size is ${config.vocab_size}`);
  }
  return { config, weights, tokenizer, extra: byName, rawConfig, dtype: dtypes.size === 1 ? [...dtypes][0] as FloatDtype : 'F32', dir };
}

/** The files of a model directory: config.json, model.safetensors (+ extra tensors), the tokenizer's files. */
export function modelDirFiles(
  config: ModelConfig,
  weights: Map<string, Float32Array>,
  tokenizer: Tokenizer,
  opts: { extra?: Map<string, NamedTensor>; extraConfig?: Record<string, unknown>; dtype?: FloatDtype } = {},
): Record<string, string | Buffer> {
  const tensors = new Map<string, NamedTensor>();
  const dtype = opts.dtype ?? 'F32';
  for (const [name, shape] of parameterShapes(config)) {
    const w = weights.get(name)!;
    if (isLlama(config)) {
      const linear = isLinearWeight(name);
      tensors.set(llamaHfName(name), { shape: linear ? [shape[1], shape[0]] : shape, data: linear ? transpose2d(w, shape[0], shape[1]) : w, dtype });
    } else tensors.set(name, { shape, data: w, dtype });
  }
  for (const [name, t] of opts.extra ?? []) tensors.set(name, { ...t, dtype });
  const dtypeName = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[dtype];
  const files: Record<string, string | Buffer> = {
    'config.json': JSON.stringify(configToJson(config, { ...(isLlama(config) ? { torch_dtype: dtypeName } : {}), ...opts.extraConfig }), null, 2) + '\n',
    'model.safetensors': serializeSafetensors(tensors, { format: 'pt' }),
    ...tokenizerFiles(tokenizer),
  };
  return files;
}

/** Test hook: pause after each file of a checkpoint, so a test can kill the writer mid-write. */
const WRITE_DELAY_MS = Number(process.env.RLHF_TEST_CHECKPOINT_DELAY_MS ?? 0);

/** Writes files (names may contain one folder level, e.g. "value/config.json") into dir atomically. */
export function writeFilesAtomic(dir: string, files: Record<string, string | Buffer>): void {
  writeDirAtomic(dir, (tmp) => {
    for (const [name, content] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(tmp, name)), { recursive: true });
      writeFileSynced(path.join(tmp, name), content);
      if (WRITE_DELAY_MS > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, WRITE_DELAY_MS);
    }
  });
}

/** Writes a model directory atomically. `extra` tensors (score heads) go after the GPT-2 ones. */
export function writeModelDir(
  dir: string,
  config: ModelConfig,
  weights: Map<string, Float32Array>,
  tokenizer: Tokenizer,
  opts: { extra?: Map<string, NamedTensor>; extraConfig?: Record<string, unknown>; files?: Record<string, string | Buffer>; dtype?: FloatDtype } = {},
): void {
  writeFilesAtomic(dir, { ...modelDirFiles(config, weights, tokenizer, opts), ...opts.files });
}

/**
 * Our checkpoints are float32 whatever the model came in: a bfloat16 weight has 8 significant
 * bits, so a fine-tuning step of 1e-5 on a weight of 0.02 would round away, and resume would
 * not be exact. modelDirFiles' `dtype` writes a half-precision copy on request.
 */
export async function saveModel(model: CausalLM, tokenizer: Tokenizer, dir: string, extraConfig?: Record<string, unknown>) {
  writeModelDir(dir, model.config, await model.weights(), tokenizer, { extraConfig });
}

export function loadModel(dir: string, trainable = true): { model: CausalLM; tokenizer: Tokenizer; loaded: LoadedModel } {
  const loaded = readModelDir(dir);
  return { model: modelFromLoaded(loaded, trainable), tokenizer: loaded.tokenizer, loaded };
}

/** The model of a folder; an adapter folder gives its base with the adapter attached (trained when trainable). */
export function modelFromLoaded(loaded: LoadedModel, trainable = true): CausalLM {
  const model = createModel(loaded.config, loaded.weights, trainable && !loaded.adapter);
  if (loaded.adapter) {
    const a = loaded.adapter;
    const lora = new Lora(a.cfg, targetModules(parameterShapes(loaded.config), a.cfg.targets), 0, a.weights, trainable);
    lora.base = a.base;
    model.attachLora(lora);
  }
  return model;
}

/**
 * The files of an adapter folder in PEFT's layout: adapter_config.json (base_model_name_or_path:
 * the base folder), adapter_model.safetensors (+ extra tensors such as a score head, under
 * "base_model.model."), the tokenizer's files, and our own keys in rlhf_model.json.
 */
export async function adapterDirFiles(model: CausalLM, tokenizer: Tokenizer, opts: { extra?: Map<string, NamedTensor>; extraConfig?: Record<string, unknown>; taskType?: 'CAUSAL_LM' | 'SEQ_CLS' } = {}): Promise<Record<string, string | Buffer>> {
  const lora = model.lora!;
  const tensors = await peftTensors(model.config, lora);
  for (const [name, t] of opts.extra ?? []) tensors.set(`base_model.model.${name}`, t);
  return {
    'adapter_config.json': JSON.stringify(peftConfig(model.config, lora.cfg, lora.base ?? '', opts.taskType ?? 'CAUSAL_LM'), null, 2) + '\n',
    'adapter_model.safetensors': serializeSafetensors(tensors, { format: 'pt' }),
    ...tokenizerFiles(tokenizer),
    [ADAPTER_EXTRA]: JSON.stringify(opts.extraConfig ?? {}, null, 2) + '\n',
  };
}

/** A model's folder: the adapter alone when it has one (the base stays where it is), else the whole model. */
export async function modelFiles(model: CausalLM, tokenizer: Tokenizer, opts: { extra?: Map<string, NamedTensor>; extraConfig?: Record<string, unknown>; taskType?: 'CAUSAL_LM' | 'SEQ_CLS' } = {}): Promise<Record<string, string | Buffer>> {
  if (model.lora) return adapterDirFiles(model, tokenizer, opts);
  return modelDirFiles(model.config, await model.weights(), tokenizer, opts);
}

