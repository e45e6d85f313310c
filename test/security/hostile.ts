/** The hostile files the security review found, as a committed workspace would carry them (tests and the e2e share them). */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { tmpDir } from '../helpers';

/** The hostile files of the review, as a committed workspace would carry them. */
export function hostileWorkspace(root = tmpDir('rlhf-hostile-')): { root: string; runs: string; data: string; good: string[] } {
  const runs = path.join(root, '.rlhf', 'runs');
  const data = path.join(root, 'data');
  fs.mkdirSync(data, { recursive: true });
  const mk = (name: string, runJson: (f: string) => void) => {
    fs.mkdirSync(path.join(runs, name, 'checkpoints'), { recursive: true });
    runJson(path.join(runs, name, 'run.json'));
  };
  mk('zero', (f) => fs.symlinkSync('/dev/zero', f));
  mk('fifo', (f) => execFileSync('mkfifo', [f]));
  mk('null', (f) => fs.writeFileSync(f, 'null'));
  mk('numeric-start', (f) => fs.writeFileSync(f, JSON.stringify({ id: 'numeric-start', stage: 'sft', status: 'completed', config: {}, started_at: 12 })));
  mk('huge', (f) => fs.writeFileSync(f, '{"id": "' + 'x'.repeat(50e6) + '"}'));
  mk('good', (f) => fs.writeFileSync(f, JSON.stringify({ id: 'good', stage: 'sft', status: 'completed', config: {}, started_at: '2026-11-30T10:00:00.000Z' })));
  fs.writeFileSync(path.join(runs, 'good', 'metrics.jsonl'), '{"step": 1, "loss": 1.5}\n');
  fs.symlinkSync('/dev/zero', path.join(runs, 'numeric-start', 'metrics.jsonl'));
  // datasets
  const good = (name: string) => {
    fs.writeFileSync(path.join(data, name), JSON.stringify({ prompt: 'p', chosen: 'a', rejected: 'b' }) + '\n');
    return path.join(data, name);
  };
  fs.writeFileSync(path.join(data, 'a-deep.rm.jsonl'), '['.repeat(19e6) + '\n');
  fs.writeFileSync(path.join(data, 'b-deep-id.rm.jsonl'), '{"prompt":"x","chosen":"a","rejected":"b","id":' + '['.repeat(100_000) + ']'.repeat(100_000) + '}\n');
  fs.writeFileSync(path.join(data, 'c-bracket.rm.jsonl'), '['.repeat(60e6) + '\n');
  execFileSync('mkfifo', [path.join(data, 'd-fifo.rm.jsonl')]);
  fs.symlinkSync('/dev/zero', path.join(data, 'e-zero.sft.jsonl'));
  const outside = path.join(tmpDir(), 'secret.rm.jsonl');
  fs.writeFileSync(outside, JSON.stringify({ prompt: 'secret', chosen: 'a', rejected: 'b' }) + '\n');
  fs.symlinkSync(outside, path.join(data, 'f-outside.rm.jsonl'));
  return { root, runs, data, good: [good('g-good.rm.jsonl'), good('z-good.rm.jsonl')] };
}

