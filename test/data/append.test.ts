import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { tmpDir } from '../helpers';
import { appendRecords } from '../../src/data/append';

test('appendRecords writes several records as lines under one lock, after a file that lacks its final newline', () => {
  const file = path.join(tmpDir(), 'votes.rm.jsonl');
  fs.writeFileSync(file, '{"a":1}');
  assert.deepEqual(appendRecords(file, [{ b: 2 }, { c: 3 }]), ['{"b":2}', '{"c":3}']);
  assert.equal(fs.readFileSync(file, 'utf8'), '{"a":1}\n{"b":2}\n{"c":3}\n');
  assert.deepEqual(appendRecords(file, []), []);
  assert.equal(fs.readFileSync(file, 'utf8'), '{"a":1}\n{"b":2}\n{"c":3}\n', 'nothing to add: the file is untouched');
  assert.ok(!fs.existsSync(`${file}.lock`), 'the lock is released');
});
