/**
 * The datasets the sidebar shows: discovered by glob (and sniffed *.jsonl under a folder), read
 * once each and re-read only when that file changes. Every read happens on the scan thread
 * (src/data/scan-worker.ts), never on the extension host's own: files up to 20 MB are validated in
 * full there, bigger ones only indexed (and validated on request). A file that cannot be read (a
 * FIFO, a device, a link out of the workspace, one that takes too long or too much memory) is shown
 * with that reason as its error, and costs no other file.
 */
import * as fs from 'fs';
import { FileEntry } from '../../data/dataset-tree';
import { RecordIndex, readRecordBytes } from '../../data/record-index';
import { Problem, parseJsonLine } from '../../data/jsonl';
import { stageFromName } from '../../data/reader';
import { ScanClient } from '../scan-client';

/** A record longer than this is not parsed for its label and preview. */
export const PREVIEW_MAX_BYTES = 1 << 20;

export interface StoredFile {
  entry: FileEntry;
  index?: RecordIndex;
  problems: Problem[];
  shown: number;
  validated: boolean;
}

export class DatasetStore {
  readonly files = new Map<string, StoredFile>();

  constructor(private readonly scan: ScanClient, private readonly roots: () => string[]) {}

  /** (Re)reads one file on the scan thread; false when it is not a dataset (or is gone). */
  async load(file: string, shown = 100, full = false): Promise<boolean> {
    const r = await this.scan.ask({ type: 'scan', file, roots: this.roots(), full });
    const keepShown = this.files.get(file)?.shown ?? shown;
    if (r.type === 'scan' && r.result.entry) {
      this.files.set(file, { entry: r.result.entry, problems: r.result.problems, index: r.result.index, shown: keepShown, validated: r.result.validated });
      return true;
    }
    const stage = stageFromName(file);
    const why = r.type === 'failed' ? r.message : r.type === 'scan' ? r.result.problems[0]?.message : undefined;
    if (!stage || !why || !fs.existsSync(file)) {
      this.files.delete(file);
      return false;
    }
    // named as a dataset but unreadable: shown, with the reason as its one error
    const problems = [{ file, line: 0, message: why }];
    this.files.set(file, { entry: { path: file, stage, records: 0, problems: 1, bytes: 0 }, problems, shown: keepShown, validated: false });
    return true;
  }

  remove(file: string): void {
    this.files.delete(file);
  }

  /** The file's record index, rebuilt on the scan thread when the file changed. */
  async index(file: string): Promise<RecordIndex | undefined> {
    const f = this.files.get(file);
    if (!f || f.entry.records === 0) return undefined;
    let mtime: number;
    try {
      mtime = fs.statSync(file).mtimeMs;
    } catch {
      return undefined;
    }
    if (!f.index || f.index.mtimeMs !== mtime) {
      const r = await this.scan.ask({ type: 'index', file });
      f.index = r.type === 'index' ? r.index : undefined;
    }
    return f.index;
  }

  /** Record n of a file: its line and parsed object (undefined when the line is not a JSON object, or too long to preview). */
  record(file: string, n: number): { line: number; value: Record<string, unknown> | undefined } {
    const index = this.files.get(file)?.index;
    if (!index || n >= index.count) return { line: 0, value: undefined };
    if (index.ends[n] - index.starts[n] > PREVIEW_MAX_BYTES) return { line: index.lineNos[n], value: undefined };
    try {
      const r = parseJsonLine(readRecordBytes(index, n));
      return { line: index.lineNos[n], value: r && 'value' in r ? r.value : undefined };
    } catch {
      return { line: index.lineNos[n], value: undefined };
    }
  }

  entries(): FileEntry[] {
    return [...this.files.values()].map((f) => f.entry);
  }
}
