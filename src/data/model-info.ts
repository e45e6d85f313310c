/**
 * What a model folder is, for the pickers: whether it has a reward head (`score.weight` in its
 * safetensors header, as LlamaForSequenceClassification and our reward models name it), which run
 * and step it comes from, and how old it is. Only the safetensors header is read (bounded), on the
 * scan thread.
 */
import * as fs from 'fs';
import * as path from 'path';
import { openRegular } from './durable';
import { RunDir } from './run';

export interface ModelInfo {
  dir: string;
  /** The weights carry a reward head: a reward model (or a PPO critic). */
  scoreHead: boolean;
  /** The run it was written by, when it is a run's checkpoint. */
  run?: { id: string; stage: string; status: string };
  /** The checkpoint's step ("final" is the last step's copy). */
  step?: number;
  final?: boolean;
  /** The run's headline evaluation figure at that checkpoint's end, when it logged one. */
  metric?: string;
  modifiedMs: number;
  /** Why the folder is not usable (no weights, a header that cannot be read). */
  problem?: string;
  /** A LoRA adapter (PEFT folder) on this base model. */
  adapterOf?: string;
  /** The Hub id, for a model in the Hugging Face cache. */
  hubId?: string;
}

const MAX_HEADER = 100 << 20;

/** The tensor names in a safetensors file's header. */
export function safetensorsNames(file: string): string[] {
  const { fd, size } = openRegular(file);
  try {
    const len = Buffer.alloc(8);
    if (size < 8 || fs.readSync(fd, len, 0, 8, 0) !== 8) throw new Error(`${file} is too short for safetensors`);
    const n = Number(len.readBigUInt64LE(0));
    if (n > MAX_HEADER || n > size - 8) throw new Error(`${file}: a safetensors header of ${n} bytes does not fit the file`);
    const head = Buffer.alloc(n);
    fs.readSync(fd, head, 0, n, 8);
    const parsed = JSON.parse(head.toString('utf8')) as Record<string, unknown>;
    return Object.keys(parsed).filter((k) => k !== '__metadata__');
  } finally {
    fs.closeSync(fd);
  }
}

export function describeModel(dir: string): ModelInfo {
  const out: ModelInfo = { dir, scoreHead: false, modifiedMs: 0 };
  try {
    const adapter = path.join(dir, 'adapter_config.json');
    if (!fs.existsSync(path.join(dir, 'config.json')) && fs.existsSync(adapter)) {
      // a LoRA adapter: its score head (a reward model's) is among the adapter's tensors
      out.modifiedMs = fs.statSync(adapter).mtimeMs;
      const base = (JSON.parse(fs.readFileSync(adapter, 'utf8')) as { base_model_name_or_path?: string }).base_model_name_or_path;
      out.adapterOf = typeof base === 'string' ? base : '?';
      const weights = path.join(dir, 'adapter_model.safetensors');
      if (fs.existsSync(weights)) out.scoreHead = safetensorsNames(weights).some((k) => k.endsWith('.score.weight'));
      else out.problem = 'no adapter_model.safetensors';
    } else {
      out.modifiedMs = fs.statSync(path.join(dir, 'config.json')).mtimeMs;
      const weights = path.join(dir, 'model.safetensors');
      const index = path.join(dir, 'model.safetensors.index.json');
      if (fs.existsSync(weights)) out.scoreHead = safetensorsNames(weights).some((k) => k === 'score.weight' || k.endsWith('.score.weight'));
      else if (fs.existsSync(index)) out.scoreHead = Object.keys((JSON.parse(fs.readFileSync(index, 'utf8')) as { weight_map?: object }).weight_map ?? {}).some((k) => k === 'score.weight' || k.endsWith('.score.weight'));
      else out.problem = 'no model.safetensors';
    }
  } catch (e) {
    out.problem = (e as Error).message;
  }
  // <run>/checkpoints/<step-N | final>
  const ckpts = path.dirname(dir);
  if (path.basename(ckpts) === 'checkpoints') {
    const run = new RunDir(path.dirname(ckpts));
    try {
      const info = run.read();
      out.run = { id: info.id, stage: info.stage, status: info.status };
      const m = /^step-(\d+)$/.exec(path.basename(dir));
      if (m) out.step = Number(m[1]);
      else if (path.basename(dir) === 'final') {
        out.final = true;
        out.step = run.stepCheckpoints().at(-1)?.step;
      }
      const metrics = run.readMetrics(64 << 10).filter((x) => out.step === undefined || x.step <= out.step);
      const last = (k: string) => [...metrics].reverse().find((x) => typeof x[k] === 'number')?.[k] as number | undefined;
      const ev = last('eval/accuracy') !== undefined ? `eval acc ${last('eval/accuracy')!.toFixed(3)}` : last('eval/loss') !== undefined ? `eval loss ${last('eval/loss')!.toFixed(3)}` : undefined;
      if (ev) out.metric = ev;
    } catch {
      /* a checkpoints folder without a readable run.json: a plain model folder */
    }
  }
  return out;
}
