import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { tmpDir } from '../helpers';
import { MetricRow, MetricsTail, metricCsv, toColumns } from '../../src/data/metrics-tail';

test('tailing metrics.jsonl returns complete lines only, and starts over when the file is rewritten', () => {
  const file = path.join(tmpDir(), 'metrics.jsonl');
  const tail = new MetricsTail(file);
  assert.deepEqual(tail.read(), { reset: false, rows: [] }, 'no file yet');
  fs.writeFileSync(file, '{"step":1,"time":100,"loss":2.5}\n{"step":2,"time":101,"lo');
  assert.deepEqual(tail.read().rows.map((r) => r.step), [1]);
  fs.appendFileSync(file, 'ss":2.25,"accuracy":null}\nnot json\n');
  const r2 = tail.read();
  assert.deepEqual(r2.rows, [{ step: 2, time: 101, metrics: { loss: 2.25, accuracy: null } }]);
  assert.equal(tail.bad, 1);
  assert.deepEqual(tail.read().rows, [], 'nothing new');
  fs.writeFileSync(file, '{"step":1,"time":100,"loss":2.5}\n'); // a resume truncated it
  const r3 = tail.read();
  assert.equal(r3.reset, true);
  assert.deepEqual(r3.rows.map((r) => r.step), [1]);
});

test('rows become columns with null where a metric is missing; CSV per metric', () => {
  const rows: MetricRow[] = [{ step: 1, time: 10, metrics: { loss: 1 } }, { step: 2, time: 11, metrics: { loss: 0.5, 'eval/loss': 0.7 } }];
  assert.deepEqual(toColumns(rows), { step: [1, 2], time: [10, 11], metrics: { loss: [1, 0.5], 'eval/loss': [null, 0.7] } });
  assert.equal(metricCsv('eval/loss', [{ id: 'sft-1', rows }, { id: 'a,b', rows: [{ step: 5, time: 3, metrics: { 'eval/loss': null } }] }]), 'run,step,time,eval/loss\nsft-1,2,11,0.7\n"a,b",5,3,NaN\n');
});
