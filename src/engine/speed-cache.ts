/**
 * This machine's measured speeds, kept between runs so a cost estimate can say how long a run
 * will take here: `rlhf bench train|generate` and every finished training run add a measurement
 * (model FLOP/s of training or of cached generation, for a backend, thread count and model size).
 * An estimate takes the median of the latest measurements of the same backend and kind nearest in
 * model size.
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

/**
 * The speed of this backend and kind nearest in model size (log scale): among the latest five
 * measurements at that size (within 10%), the median one, so that a run slowed by other work on the
 * machine does not set the next estimate.
 */
export function nearestSpeed(kind: SpeedMeasure['kind'], backend: string, params: number, file = speedCacheFile()): SpeedMeasure | undefined {
  const same = readSpeeds(file).filter((m) => m.kind === kind && m.backend === backend);
  if (!same.length) return undefined;
  const dist = (m: SpeedMeasure) => Math.abs(Math.log(m.params / params));
  const nearest = Math.min(...same.map(dist));
  const near = same.filter((m) => dist(m) <= nearest + 0.1).slice(-5);
  if (near.length === 1) return near[0];
  const mid = [...near].sort((a, b) => a.flops_per_second - b.flops_per_second)[Math.floor(near.length / 2)];
  return { ...mid, source: `${mid.source} (the median of the last ${near.length} measurements at this size)` };
}
