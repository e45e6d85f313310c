/**
 * Messages between the extension host and its scan thread (a worker_threads Worker running
 * src/data/scan-worker.ts): the workspace's datasets and runs are read there, never on the host's
 * own thread. Replies are validated on receipt.
 */
import type { FileEntry } from '../data/dataset-tree';
import type { Problem } from '../data/jsonl';
import type { RecordIndex } from '../data/record-index';
import type { RunSummary } from '../data/runs-tree';
import type { PartRequest, PartResult } from '../data/validate-parallel';
import type { ModelInfo } from '../data/model-info';
import { isInt, isObj, isStr } from './validate';

export type ScanRequest =
  | { type: 'scan'; id: number; file: string; roots: string[]; full?: boolean }
  | { type: 'index'; id: number; file: string }
  /** `votes`: evaluation files whose results go into the tooltips of the runs whose models they compare (names relative to `workspace`). */
  | { type: 'runs'; id: number; dir: string; votes?: { workspace: string; files: string[] } }
  /** What each model folder is (reward head, run, step), for the pickers. */
  | { type: 'models'; id: number; dirs: string[] }
  | ({ type: 'part'; id: number } & PartRequest);

export interface ScanResult {
  /** Undefined when the file is not a dataset. */
  entry?: FileEntry;
  problems: Problem[];
  validated: boolean;
  index?: RecordIndex;
}

export type ScanReply =
  | { type: 'scan'; id: number; result: ScanResult }
  | { type: 'index'; id: number; index: RecordIndex }
  | { type: 'runs'; id: number; runs: RunSummary[] }
  | { type: 'part'; id: number; result: PartResult }
  | { type: 'models'; id: number; models: ModelInfo[] }
  | { type: 'failed'; id: number; message: string };

export function parseScanRequest(v: unknown): ScanRequest | undefined {
  if (!isObj(v) || !isInt(v.id)) return undefined;
  if (v.type === 'scan' && isStr(v.file) && Array.isArray(v.roots) && v.roots.every(isStr)) return { type: 'scan', id: v.id, file: v.file, roots: v.roots, full: v.full === true };
  if (v.type === 'index' && isStr(v.file)) return { type: 'index', id: v.id, file: v.file };
  if (v.type === 'runs' && isStr(v.dir)) {
    const votes = isObj(v.votes) && isStr(v.votes.workspace) && Array.isArray(v.votes.files) && v.votes.files.every(isStr) ? { workspace: v.votes.workspace, files: v.votes.files as string[] } : undefined;
    return { type: 'runs', id: v.id, dir: v.dir, ...(votes ? { votes } : {}) };
  }
  if (v.type === 'models' && Array.isArray(v.dirs) && v.dirs.every(isStr)) return { type: 'models', id: v.id, dirs: v.dirs as string[] };
  if (v.type === 'part' && isStr(v.file) && isInt(v.start) && isInt(v.end) && isStr(v.stage) && typeof v.last === 'boolean') {
    return { type: 'part', id: v.id, file: v.file, start: v.start, end: v.end, stage: v.stage as PartRequest['stage'], last: v.last, maxLineBytes: isInt(v.maxLineBytes) ? v.maxLineBytes : undefined };
  }
  return undefined;
}

export function parseScanReply(v: unknown): ScanReply | undefined {
  if (!isObj(v) || !isInt(v.id)) return undefined;
  if (v.type === 'scan' && isObj(v.result) && Array.isArray(v.result.problems)) return v as ScanReply;
  if (v.type === 'index' && isObj(v.index) && isInt(v.index.count)) return v as ScanReply;
  if (v.type === 'runs' && Array.isArray(v.runs)) return v as ScanReply;
  if (v.type === 'models' && Array.isArray(v.models) && v.models.every((m) => isObj(m) && isStr(m.dir) && typeof m.scoreHead === 'boolean')) return v as ScanReply;
  if (v.type === 'failed' && isStr(v.message)) return { type: 'failed', id: v.id, message: v.message };
  return undefined;
}
