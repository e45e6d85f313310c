/**
 * TensorBoard event files read without TensorFlow, on files real writers made
 * (test/fixtures/tensorboard: tensorboardX's SummaryWriter, and TensorFlow's own writer in lingvo's
 * test data, with TensorFlow's reading of it as the expected answer); the TF2 tensor form and
 * damaged files on bytes made here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { FIXTURES, tmpDir } from '../helpers';
import { crc32c, maskedCrc32c, readEventFile } from '../../src/data/tfevents';
import { findEventFiles, metricName, readTensorboardLog } from '../../src/data/tensorboard-log';
import { isMetricName, parseHostToDashboard } from '../../src/protocol/dashboard';

const TBX = path.join(FIXTURES, 'tensorboard', 'tensorboardx', 'events.out.tfevents.1661684667.applepie4');
const LINGVO = path.join(FIXTURES, 'tensorboard', 'lingvo', 'events.out.tfevents.test');

test('CRC-32C and its mask match the published check values', () => {
  // RFC 3720 B.4: 32 bytes of zeros, of 0xff, and "123456789" (the standard check value)
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assert.equal(crc32c(new TextEncoder().encode('123456789')), 0xe3069283);
  // the masked CRC of an 8-byte length 24, as the tensorboa.rs reader's test has it
  const len = new Uint8Array(8);
  len[0] = 24;
  assert.equal(maskedCrc32c(len), 575373219);
});

test('tensorboardX\'s file: the ten scalars it was asked to write, at their steps, and the file version event', () => {
  const ef = readEventFile(TBX);
  assert.equal(ef.records, 11, '10 logged entries and the file version event');
  assert.equal(ef.fileVersion, 'brain.Event:2');
  assert.equal(ef.stoppedEarly, undefined);
  assert.deepEqual(ef.scalars.map((s) => [s.tag, s.step, s.value]), Array.from({ length: 10 }, (_, i) => ['tag', i, i]));
  // the writer's clock: the seconds in the file's name, rising
  assert.ok(ef.scalars.every((s, i) => Math.floor(s.wallTime) >= 1661684667 && (i === 0 || s.wallTime >= ef.scalars[i - 1].wallTime)));
});

test('TensorFlow\'s own writer (lingvo\'s test file): bleu/dev read as TensorFlow reads it (best step 102600 of 185200)', () => {
  const log = readTensorboardLog(path.dirname(LINGVO), [LINGVO]);
  assert.equal(log.problems.length, 0);
  const bleu = log.rows.filter((r) => 'bleu/dev' in r).map((r) => [r.step, r['bleu/dev']] as const);
  assert.ok(bleu.length > 10);
  // lingvo's best_step op over this file (its test's expected values): the first step of the
  // highest bleu/dev, and the last step that has one
  let best = bleu[0];
  for (const b of bleu) if (b[1] > best[1]) best = b;
  assert.equal(best[0], 102600);
  assert.equal(bleu.at(-1)![0], 185200);
  for (const name of ['brevity_penalty/dev', 'log_perplexity/dev', 'runtime/sentence/sec']) assert.ok(log.rows.some((r) => name in r), name);
  // TensorBoard allows any tag ("bleu/split:dev"); a name the dashboard cannot draw becomes one it can
  assert.ok(log.rows.some((r) => r['bleu/split_dev'] === r['bleu/dev']));
  assert.ok(log.rows.every((r) => Object.keys(r).every((k) => isMetricName(k))));
  assert.ok(log.rows.every((r) => Number.isFinite(r.time) && r.time > 1.5e9), 'times are the writer\'s wall times');
  // the rows make a dashboard message
  assert.ok(parseHostToDashboard({ type: 'points', run: 'x', reset: true, step: log.rows.map((x) => x.step), time: log.rows.map((x) => x.time), metrics: { 'bleu/dev': log.rows.map((x) => x['bleu/dev'] ?? null) } }));
});

/** One record as TensorFlow's record writer frames it. */
function record(data: Uint8Array): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt32LE(data.length, 0);
  head.writeUInt32LE(maskedCrc32c(head, 0, 8), 8);
  const tail = Buffer.alloc(4);
  tail.writeUInt32LE(maskedCrc32c(data), 0);
  return Buffer.concat([head, data, tail]);
}
const varint = (n: number) => {
  const out: number[] = [];
  while (n > 127) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
};
const field = (n: number, bytes: Uint8Array | number[]) => Buffer.from([...varint(n * 8 + 2), ...varint(bytes.length), ...bytes]);
const double = (n: number, v: number) => {
  const b = Buffer.alloc(9);
  b[0] = n * 8 + 1;
  b.writeDoubleLE(v, 1);
  return b;
};

/** A TF2 tf.summary.scalar event: the value as a float tensor, the plugin named with the first value only. */
function tf2Scalar(tag: string, step: number, value: number, withMetadata: boolean): Buffer {
  const f32 = Buffer.alloc(4);
  f32.writeFloatLE(value);
  const tensor = Buffer.concat([Buffer.from([0x08, 1]), field(2, []), field(4, f32)]); // dtype DT_FLOAT, shape [], tensor_content
  const metadata = field(9, field(1, field(1, Buffer.from('scalars'))));
  const v = Buffer.concat([field(7, Buffer.from(tag)), withMetadata ? metadata : Buffer.alloc(0), field(8, tensor)]);
  return Buffer.concat([double(1, 1700000000 + step), Buffer.from([0x10, ...varint(step)]), field(5, field(1, v))]);
}

test('the TF2 form (a float tensor under the scalars plugin) is read; a text value is not a scalar', () => {
  const dir = tmpDir();
  const file = path.join(dir, 'events.out.tfevents.1700000000.host.1.0.v2');
  const text = Buffer.concat([field(7, Buffer.from('args/text_summary')), field(9, field(1, field(1, Buffer.from('text')))), field(8, Buffer.from([0x08, 7]))]);
  fs.writeFileSync(file, Buffer.concat([
    record(Buffer.concat([double(1, 1700000000), field(3, Buffer.from('brain.Event:2'))])),
    record(Buffer.concat([double(1, 1700000000), field(5, field(1, text))])),
    record(tf2Scalar('train/loss', 1, 2.5, true)),
    record(tf2Scalar('train/loss', 2, 2.25, false)),
    record(tf2Scalar('train/train_runtime', 2, 12, true)),
  ]));
  const ef = readEventFile(file);
  assert.deepEqual(ef.scalars.map((s) => [s.tag, s.step, s.value]), [['train/loss', 1, 2.5], ['train/loss', 2, 2.25], ['train/train_runtime', 2, 12]]);
  // the Trainer's names: train/x is x, its end-of-training numbers are the summary, not a step
  const log = readTensorboardLog(dir, findEventFiles(dir));
  assert.deepEqual(log.rows, [{ step: 1, time: 1700000001, loss: 2.5 }, { step: 2, time: 1700000002, loss: 2.25 }]);
  assert.deepEqual(log.summary, { train_runtime: 12 });
  assert.equal(log.startedAt, 1700000000);
});

test('a record cut short at the end (the run still writing) ends the read quietly with what came before; a damaged one ends it with a problem', () => {
  const dir = tmpDir();
  const whole = fs.readFileSync(TBX);
  const cut = path.join(dir, 'events.out.tfevents.1.cut');
  fs.writeFileSync(cut, whole.subarray(0, whole.length - 10));
  const a = readEventFile(cut);
  assert.equal(a.scalars.length, 9);
  assert.match(a.stoppedEarly!, /cut short .* may still be writing/);
  const bad = Buffer.from(whole);
  bad[bad.length - 20] ^= 0xff; // a byte inside the last record's data
  const damaged = path.join(dir, 'events.out.tfevents.2.bad');
  fs.writeFileSync(damaged, bad);
  const b = readEventFile(damaged);
  assert.equal(b.scalars.length, 9);
  assert.match(b.stoppedEarly!, /fails its checksum/);
  assert.throws(() => readTensorboardLog(dir, []), /no TensorBoard event files/);
});

test('a resumed run\'s second file replaces the steps it logged again; files are found under runs/<date>_<host>/', () => {
  const dir = tmpDir();
  const first = path.join(dir, 'runs', 'Jan01_00-00-00_host');
  const second = path.join(dir, 'runs', 'Jan01_01-00-00_host');
  fs.mkdirSync(first, { recursive: true });
  fs.mkdirSync(second, { recursive: true });
  fs.mkdirSync(path.join(dir, 'checkpoint-4'));
  const ev = (t0: number, steps: [number, number][]) => Buffer.concat([record(Buffer.concat([double(1, t0), field(3, Buffer.from('brain.Event:2'))])), ...steps.map(([s, v]) => record(tf2Scalar('train/loss', s, v, true)))]);
  fs.writeFileSync(path.join(second, 'events.out.tfevents.1700003600.host.2.0'), ev(1700003600, [[4, 0.75], [5, 0.5]]));
  fs.writeFileSync(path.join(first, 'events.out.tfevents.1700000000.host.1.0'), ev(1700000000, [[3, 1.5], [4, 1], [5, 1]]));
  const files = findEventFiles(dir);
  assert.equal(files.length, 2);
  const log = readTensorboardLog(dir, files);
  assert.deepEqual(log.rows.map((r) => [r.step, r.loss]), [[3, 1.5], [4, 0.75], [5, 0.5]]);
});

test('tags as metric names: the Trainer\'s train/ prefix dropped, eval/ kept, odd characters made drawable, a row\'s own step and time never overwritten', () => {
  assert.equal(metricName('train/loss'), 'loss');
  assert.equal(metricName('train/rewards/chosen'), 'rewards/chosen');
  assert.equal(metricName('eval/loss'), 'eval/loss');
  assert.equal(metricName('bleu/split:dev'), 'bleu/split_dev');
  assert.equal(metricName('a//b/../c d'), 'a/_/b/_/c_d');
  assert.equal(metricName('train/step'), 'train/step');
  assert.equal(metricName('train/time'), 'train/time');
  assert.equal(metricName('step'), '_step');
  assert.equal(metricName('time'), '_time');
});
