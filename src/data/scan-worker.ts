/**
 * The extension host's scan thread: reads the workspace's dataset files and runs folder so the
 * host's own thread never parses what a workspace (trusted or not) put there. `rlhf validate` also
 * runs it, one per core, to check the parts of a large file (src/data/validate-parallel.ts). The host starts it
 * with a memory limit and a time limit per request (src/host/scan-client.ts); a file that exhausts
 * either costs that file alone.
 */
import { parentPort } from 'worker_threads';
import { buildIndex, readRecordBytes } from './record-index';
import { parseJsonLine } from './jsonl';
import { sniffStage, stageFromName } from './reader';
import { datasetStats } from './stats';
import { insideFolder, openRegular } from './durable';
import { listRuns } from './runs-tree';
import { describeModel } from './model-info';
import { validatePart } from './validate-parallel';
import { ScanReply, ScanRequest, ScanResult, parseScanRequest } from '../protocol/scan';
import * as fs from 'fs';

/** Files up to this size are validated in full when found; bigger ones are indexed, validated on request. */
export const FULL_READ_BYTES = 20e6;

/** `full`: validate whatever the size (the user asked for it). */
export function scanFile(file: string, roots: string[], full = false): ScanResult {
  // a symlink that leads out of the workspace is not the workspace's data
  if (roots.length && !roots.some((r) => insideFolder(file, r))) return { problems: [{ file, line: 0, message: 'resolves outside the workspace (a symbolic link?); not read' }], validated: false, entry: undefined };
  const { fd, size } = openRegular(file); // FIFOs and devices refused
  fs.closeSync(fd);
  if (full || size <= FULL_READ_BYTES) {
    const s = datasetStats(file, { keepProblems: 1000 });
    const entry = s.stage ? { path: file, stage: s.stage, records: s.records, problems: s.problems, bytes: s.bytes, stats: s } : undefined;
    return { entry, problems: s.first_problems, validated: true };
  }
  const index = buildIndex(file);
  let stage = stageFromName(file);
  if (!stage && index.count) {
    const r = parseJsonLine(readRecordBytes(index, 0));
    stage = r && 'value' in r ? sniffStage(r.value) : undefined;
  }
  return { entry: stage ? { path: file, stage, records: index.count, problems: 0, bytes: index.bytes, validated: false } : undefined, problems: [], validated: false, index };
}

function handle(m: ScanRequest): ScanReply {
  try {
    if (m.type === 'scan') return { type: 'scan', id: m.id, result: scanFile(m.file, m.roots, m.full) };
    if (m.type === 'index') return { type: 'index', id: m.id, index: buildIndex(m.file) };
    if (m.type === 'part') return { type: 'part', id: m.id, result: validatePart(m) };
    if (m.type === 'models') return { type: 'models', id: m.id, models: m.dirs.slice(0, 500).map(describeModel) };
    return { type: 'runs', id: m.id, runs: listRuns(m.dir, m.votes) };
  } catch (e) {
    return { type: 'failed', id: m.id, message: (e as Error).message };
  }
}

parentPort?.on('message', (raw) => {
  const m = parseScanRequest(raw);
  if (m) parentPort!.postMessage(handle(m));
});
