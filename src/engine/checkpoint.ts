/**
 * Model directories in the Hugging Face GPT-2 layout (config.json, model.safetensors,
 * tokenizer.json for char models), written atomically: into a temporary sibling folder,
 * fsynced, then renamed into place, so a crash mid-write never leaves a half checkpoint.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as os from 'os';
import { GPTConfig, configFromJson, configToJson, parameterCount } from './config';
import { openRegular, readRegularFile } from '../data/durable';
import { GPT, parameterShapes } from './model';
import { NamedTensor, readSafetensors, serializeSafetensors } from './safetensors';
import { Tokenizer, loadTokenizer, tokenizerFile } from './tokenizer';
import { writeDirAtomic, writeFileSynced } from '../data/durable';

export { writeDirAtomic, writeFileSynced };

export class ModelDirError extends Error {}

export interface LoadedModel {
  config: GPTConfig;
  weights: Map<string, Float32Array>;
  tokenizer: Tokenizer;
  /** Extra tensors found (e.g. score.weight of reward models), without the "transformer." prefix. */
  extra: Map<string, NamedTensor>;
  /** config.json as read, for keys other stages add (reward statistics, ...). */
  rawConfig: Record<string, unknown>;
}

const fmtCount = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(1)}B` : n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : String(n));

export function readModelDir(dir: string): LoadedModel {
  const cfgFile = path.join(dir, 'config.json');
  const stFile = path.join(dir, 'model.safetensors');
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new ModelDirError(`model directory not found: ${dir}`);
  if (!fs.existsSync(cfgFile)) throw new ModelDirError(`${dir} has no config.json (not a model directory)`);
  if (!fs.existsSync(stFile)) throw new ModelDirError(`${dir} has no model.safetensors`);
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
  let config: GPTConfig;
  try {
    config = configFromJson(rawConfig);
  } catch (e) {
    throw new ModelDirError(`${cfgFile}: ${(e as Error).message.replace(/^config.json: /, '')}`);
  }
  // the memory the weights take, known before a byte of them is read: refuse what cannot fit
  const params = parameterCount(config);
  let fileBytes: number;
  try {
    const f = openRegular(stFile); // a FIFO or a device (a link to /dev/zero) is refused here
    fs.closeSync(f.fd);
    fileBytes = f.size;
  } catch (e) {
    throw new ModelDirError((e as Error).message);
  }
  if (params * 2 > fileBytes) throw new ModelDirError(`${cfgFile} describes ${fmtCount(params)} parameters, but ${path.basename(stFile)} has only ${fileBytes} bytes`);
  const need = params * 4 + fileBytes;
  if (need > os.totalmem() * 0.8) throw new ModelDirError(`${dir}: loading ${fmtCount(params)} parameters needs about ${(need / 2 ** 30).toFixed(1)} GiB; this machine has ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`);
  let tensors: Map<string, NamedTensor>;
  try {
    tensors = readSafetensors(stFile).tensors;
  } catch (e) {
    throw new ModelDirError((e as Error).message);
  }
  const byName = new Map<string, NamedTensor>();
  for (const [name, t] of tensors) byName.set(name.startsWith('transformer.') ? name.slice(12) : name, t);
  const weights = new Map<string, Float32Array>();
  for (const [name, shape] of parameterShapes(config)) {
    const t = byName.get(name);
    if (!t) throw new ModelDirError(`${stFile} has no tensor ${name}`);
    if (t.shape.join(',') !== shape.join(',')) {
      throw new ModelDirError(`${stFile}: ${name} has shape [${t.shape}], config.json implies [${shape}]`);
    }
    const bad = t.data.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) throw new ModelDirError(`${stFile}: ${name} holds ${t.data[bad]} at index ${bad}; the weights are corrupt (a diverged run?)`);
    weights.set(name, t.data);
    byName.delete(name);
  }
  const tokenizer = loadTokenizer(config.tokenizer, dir);
  if (tokenizer.vocabSize > config.vocab_size) {
    throw new ModelDirError(`${dir}: the tokenizer has ${tokenizer.vocabSize} tokens but vocab_size is ${config.vocab_size}`);
  }
  return { config, weights, tokenizer, extra: byName, rawConfig };
}

/** The files of a model directory: config.json, model.safetensors (+ extra tensors), tokenizer.json. */
export function modelDirFiles(
  config: GPTConfig,
  weights: Map<string, Float32Array>,
  tokenizer: Tokenizer,
  opts: { extra?: Map<string, NamedTensor>; extraConfig?: Record<string, unknown> } = {},
): Record<string, string | Buffer> {
  const tensors = new Map<string, NamedTensor>();
  for (const [name, shape] of parameterShapes(config)) tensors.set(name, { shape, data: weights.get(name)! });
  for (const [name, t] of opts.extra ?? []) tensors.set(name, t);
  const files: Record<string, string | Buffer> = {
    'config.json': JSON.stringify(configToJson(config, opts.extraConfig), null, 2) + '\n',
    'model.safetensors': serializeSafetensors(tensors, { format: 'pt' }),
  };
  const tok = tokenizerFile(tokenizer);
  if (tok) files['tokenizer.json'] = tok;
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
  config: GPTConfig,
  weights: Map<string, Float32Array>,
  tokenizer: Tokenizer,
  opts: { extra?: Map<string, NamedTensor>; extraConfig?: Record<string, unknown>; files?: Record<string, string | Buffer> } = {},
): void {
  writeFilesAtomic(dir, { ...modelDirFiles(config, weights, tokenizer, opts), ...opts.files });
}

export async function saveModel(model: GPT, tokenizer: Tokenizer, dir: string, extraConfig?: Record<string, unknown>) {
  writeModelDir(dir, model.config, await model.weights(), tokenizer, { extraConfig });
}

export function loadModel(dir: string, trainable = true): { model: GPT; tokenizer: Tokenizer; loaded: LoadedModel } {
  const loaded = readModelDir(dir);
  return { model: new GPT(loaded.config, loaded.weights, trainable), tokenizer: loaded.tokenizer, loaded };
}

