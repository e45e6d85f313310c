/**
 * This machine's measured speeds, kept between runs so a cost estimate can say how long a run
 * will take here: `rlhf bench train|generate` and every finished training run add a measurement
 * (model FLOP/s of training or of cached generation, for a backend, thread count and model size).
 * An estimate takes the measurement of the same backend and kind nearest in model size.
 * The file: $RLHF_CACHE_DIR, else $XDG_CACHE_HOME/rlhf, else ~/.cache/rlhf; speeds.json.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { writeFileAtomic } from '../data/durable';

export interface SpeedMeasure {
  kind: 'train' | 'generate';
  backend: string;
  threads: number;
  /** Parameters that multiply (cost.ts's N). */
  params: number;
  flops_per_second: number;
  /** What measured it: "rlhf bench train", "run sft-..." */
  source: string;
  at: string;
}

const MAX_ENTRIES = 100;

export function speedCacheFile(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.RLHF_CACHE_DIR || path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'rlhf');
  return path.join(dir, 'speeds.json');
}

export function readSpeeds(file = speedCacheFile()): SpeedMeasure[] {
  try {
    const v = JSON.parse(fs.readFileSync(file, 'utf8'));
    return Array.isArray(v) ? v.filter((m) => m && typeof m.flops_per_second === 'number' && m.flops_per_second > 0 && typeof m.params === 'number') : [];
  } catch {
    return []; // none yet, or unreadable: estimates say so
  }
}

/** Adds a measurement (the oldest go beyond MAX_ENTRIES). A cache that cannot be written is not an error. */
export function recordSpeed(m: Omit<SpeedMeasure, 'at'>, file = speedCacheFile()): void {
  if (!(m.flops_per_second > 0) || !Number.isFinite(m.flops_per_second)) return;
  try {
    const all = [...readSpeeds(file), { ...m, at: new Date().toISOString() }].slice(-MAX_ENTRIES);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    writeFileAtomic(file, JSON.stringify(all, null, 1) + '\n');
  } catch {
    // a read-only home: estimates fall back to saying no speed is measured
  }
}

/** The measurement of this backend and kind nearest in model size (log scale), the latest among equals. */
export function nearestSpeed(kind: SpeedMeasure['kind'], backend: string, params: number, file = speedCacheFile()): SpeedMeasure | undefined {
  let best: SpeedMeasure | undefined, bestD = Infinity;
  for (const m of readSpeeds(file)) {
    if (m.kind !== kind || m.backend !== backend) continue;
    const d = Math.abs(Math.log(m.params / params));
    if (d <= bestD) [best, bestD] = [m, d];
  }
  return best;
}
