import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as path from 'path';
import { FIXTURES, ROOT } from '../helpers';

const D = path.join(FIXTURES, 'datasets');
const rlhf = (...args: string[]) => spawnSync(process.execPath, [path.join(ROOT, 'dist', 'cli.js'), ...args], { encoding: 'utf8', cwd: D });

test('rlhf validate: exit 0 when every file is valid', () => {
  const r = rlhf('validate', 'shapes.sft.jsonl', 'shapes.rm.jsonl', 'shapes.ppo.jsonl', 'bom-crlf-blank.sft.jsonl');
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, '4 file(s), 11 valid record(s), 0 problem(s)\n');
});

test('rlhf validate: one FILE:LINE: message per problem, a summary, exit 1', () => {
  const r = rlhf('validate', 'bad-ranks.rm.jsonl', 'duplicate-ids.sft.jsonl', 'missing.rm.jsonl');
  assert.equal(r.status, 1);
  assert.deepEqual(r.stdout.trim().split('\n').map((l) => l.split(': ')[0]), [
    'bad-ranks.rm.jsonl:1', 'bad-ranks.rm.jsonl:2', 'bad-ranks.rm.jsonl:3', 'bad-ranks.rm.jsonl:4', 'bad-ranks.rm.jsonl:6', 'bad-ranks.rm.jsonl:7',
    'duplicate-ids.sft.jsonl:3', 'missing.rm.jsonl:0',
  ]);
  assert.equal(r.stderr, '3 file(s), 3 valid record(s), 8 problem(s)\n');
});

test('rlhf validate --json: {file, line, message} objects, then a summary object', () => {
  const r = rlhf('validate', 'invalid-utf8.sft.jsonl', '--json');
  assert.equal(r.status, 1);
  const out = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(out, [{ file: 'invalid-utf8.sft.jsonl', line: 2, message: 'invalid UTF-8' }, { type: 'summary', files: 1, records: 2, problems: 1 }]);
  assert.equal(rlhf('validate').status, 2, 'no file: a usage error');
});
