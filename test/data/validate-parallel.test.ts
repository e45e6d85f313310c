import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { ROOT, tmpDir } from '../helpers';
import { readDataset } from '../../src/data/reader';
import { readDatasetParallel } from '../../src/data/validate-parallel';
import { Problem } from '../../src/data/jsonl';

const SCRIPT = path.join(ROOT, 'dist', 'scan-worker.js');

test('validating on several threads gives the single-threaded reader\'s answer, line for line', async () => {
  const file = path.join(tmpDir(), 'mixed.rm.jsonl');
  const lines: string[] = [];
  for (let i = 0; i < 3000; i++) {
    const r = { id: `r${i % 2500}`, prompt: `p${i}`, chosen: 'a', rejected: 'b' }; // ids 0..499 repeat from line 2501 on
    if (i % 97 === 5) lines.push('{"prompt": "broken'); // bad JSON in every part
    else if (i % 211 === 7) lines.push(JSON.stringify({ ...r, chosen: '' }));
    else if (i % 300 === 1) lines.push('');
    else lines.push(JSON.stringify(r));
  }
  fs.writeFileSync(file, lines.join('\n') + '\n{"prompt": "trunc'); // a truncated last line
  const one: Problem[] = [], many: Problem[] = [];
  const a = readDataset(file, { onProblem: (p) => one.push(p) });
  for (const threads of [2, 3, 7]) {
    many.length = 0;
    const b = await readDatasetParallel(file, { script: SCRIPT, threads, minBytes: 0, onProblem: (p) => many.push(p) });
    assert.deepEqual(many, one, `${threads} threads: the same problems in the same order`);
    assert.deepEqual({ ...b }, { ...a }, `${threads} threads: the same summary`);
  }
  assert.ok(one.some((p) => /duplicate id "r0" \(first on line 1\)/.test(p.message)) && one.some((p) => /truncated/.test(p.message)));
});
