/**
 * The datasets the sidebar shows: discovered by glob (and sniffed *.jsonl under a folder),
 * read once each and re-read only when that file changes. Files up to 20 MB are validated in
 * full; bigger ones are only indexed here (fast: newline search) so the extension host never
 * stalls, and are validated on request.
 */
import * as fs from 'fs';
import { FileEntry } from '../../data/dataset-tree';
import { RecordIndex, buildIndex, readRecordBytes } from '../../data/record-index';
import { Problem } from '../../data/jsonl';
import { readDataset, sniffStage, stageFromName } from '../../data/reader';
import { datasetStats } from '../../data/stats';

export const FULL_READ_BYTES = 20e6;

export interface StoredFile {
  entry: FileEntry;
  index?: RecordIndex;
  problems: Problem[];
  shown: number;
  validated: boolean;
}

export class DatasetStore {
  readonly files = new Map<string, StoredFile>();

  /** (Re)reads one file; returns false when it is not a dataset (or is gone). */
  load(file: string, shown = 100): boolean {
    if (!fs.existsSync(file)) {
      this.files.delete(file);
      return false;
    }
    const size = fs.statSync(file).size;
    const problems: Problem[] = [];
    let stage = stageFromName(file);
    let entry: FileEntry;
    let validated = false;
    if (size <= FULL_READ_BYTES) {
      const s = readDataset(file, { onProblem: (p) => problems.length < 1000 && problems.push(p) });
      stage = s.stage;
      entry = { path: file, stage, records: s.records, problems: s.problems, bytes: s.bytes, stats: s.stage ? datasetStats(file) : undefined };
      validated = true;
    } else {
      const index = buildIndex(file);
      if (!stage && index.count) {
        try {
          stage = sniffStage(JSON.parse(readRecordBytes(index, 0).toString()));
        } catch {
          /* not JSON: not a dataset */
        }
      }
      entry = { path: file, stage, records: index.count, problems: 0, bytes: index.bytes };
    }
    if (!stage) {
      this.files.delete(file);
      return false;
    }
    this.files.set(file, { entry, problems, shown: this.files.get(file)?.shown ?? shown, validated });
    return true;
  }

  remove(file: string): void {
    this.files.delete(file);
  }

  index(file: string): RecordIndex | undefined {
    const f = this.files.get(file);
    if (!f) return undefined;
    if (!f.index || f.index.mtimeMs !== fs.statSync(file).mtimeMs) f.index = buildIndex(file);
    return f.index;
  }

  /** Record n of a file: its line and parsed object (undefined when the line is not JSON). */
  record(file: string, n: number): { line: number; value: Record<string, unknown> | undefined } {
    // a page reads 100 records: check the file's freshness once (index()), not once per record
    const index = this.files.get(file)?.index ?? this.index(file)!;
    try {
      return { line: index.lineNos[n], value: JSON.parse(readRecordBytes(index, n).toString('utf8')) };
    } catch {
      return { line: index.lineNos[n], value: undefined };
    }
  }

  entries(): FileEntry[] {
    return [...this.files.values()].map((f) => f.entry);
  }
}
