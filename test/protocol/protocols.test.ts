import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRankingToHost, parseHostToRanking, validRanks } from '../../src/protocol/ranking';
import { MAX_SAMPLE_ROWS, parseDashboardToHost, parseHostToDashboard, orderMetrics } from '../../src/protocol/dashboard';
import { parseHostMessage, parseWorkerMessage } from '../../src/protocol/worker';

const submit = { type: 'submit', index: 0, ranks: [2, 1, 3, 3], flags: ['unsafe'], comment: 'ok', timeMs: 5400 };

test('a valid submission from the ranking panel passes, exactly as sent', () => {
  assert.deepEqual(parseRankingToHost(submit), submit);
  assert.deepEqual(parseRankingToHost({ type: 'ready' }), { type: 'ready' });
  assert.deepEqual(parseRankingToHost({ type: 'skip', index: 3 }), { type: 'skip', index: 3 });
  assert.deepEqual(parseRankingToHost({ type: 'undo', path: '/etc/passwd' }), { type: 'undo' }, 'extra fields are dropped, never passed on');
  assert.deepEqual(parseRankingToHost({ type: 'trainDpo', file: '/etc/passwd' }), { type: 'trainDpo' }, 'the panel cannot name the file DPO trains on: the host uses its own target');
});

test('the ranking panel cannot send bad ranks, unknown flags, a path, or oversized text', () => {
  const bad = [
    { ...submit, ranks: [1, 3, 4, 4] }, // a gap: no rank 2
    { ...submit, ranks: [0, 1] },
    { ...submit, ranks: [1] },
    { ...submit, ranks: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] },
    { ...submit, ranks: [1.5, 1] },
    { ...submit, ranks: ['1', '2'] },
    { ...submit, flags: ['pii', 'unsafe; rm -rf'] },
    { ...submit, flags: ['unsafe', 'unsafe'] },
    { ...submit, comment: 'x'.repeat(10_001) },
    { ...submit, comment: 3 },
    { ...submit, timeMs: -1 },
    { ...submit, index: -1 },
    { ...submit, type: 'write', file: '/tmp/x' },
    null, 'submit', [submit], { type: 'skip' },
  ];
  for (const m of bad) assert.equal(parseRankingToHost(m), undefined, JSON.stringify(m)?.slice(0, 80));
  assert.ok(validRanks([1, 1, 1, 1]), 'all tied (a not-rankable record) is valid');
  assert.ok(!validRanks([1, 2, 3], 4), 'K must match');
});

test('host messages to the ranking panel are checked too', () => {
  const item = { type: 'item', index: 2, prompt: 'p', responses: ['a', 'b'], complete: true };
  assert.deepEqual(parseHostToRanking(item), item);
  assert.equal(parseHostToRanking({ ...item, responses: ['a', 2] }), undefined);
  assert.equal(parseHostToRanking({ type: 'progress', progress: { ranked: 1, skipped: 0, total: 'x', perHour: null } }), undefined);
  assert.ok(parseHostToRanking({ type: 'progress', progress: { ranked: 1, skipped: 0, total: 4, records: 17, undoable: 0, perHour: 120.5 } }));
  assert.equal(parseHostToRanking({ type: 'progress', progress: { ranked: 1, skipped: 0, total: 4, undoable: 0, perHour: 120.5 } }), undefined, 'the file\'s record count is part of progress');
  assert.equal(parseHostToRanking({ type: 'session', session: { title: 't', target: 'a', model: 'm', annotator: 'x', k: 10, generation: '' } }), undefined, 'K over 9');
});

test('the dashboard may ask for exports by metric name only, with a real PNG', () => {
  assert.deepEqual(parseDashboardToHost({ type: 'exportCsv', metric: 'objective/kl' }), { type: 'exportCsv', metric: 'objective/kl' });
  const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]).toString('base64');
  assert.ok(parseDashboardToHost({ type: 'exportPng', metric: 'loss', png }));
  for (const m of [
    { type: 'exportCsv', metric: '../../../etc/passwd' },
    { type: 'exportCsv', metric: 'a\\b' },
    { type: 'exportCsv', metric: '' },
    { type: 'exportPng', metric: 'loss', png: Buffer.from('GIF89a').toString('base64') },
    { type: 'exportPng', metric: 'loss', png: png + '<script>' },
    { type: 'exportPng', metric: 'loss', file: '/tmp/x.png', png: 5 },
  ]) assert.equal(parseDashboardToHost(m), undefined, JSON.stringify(m));
});

test('points for the dashboard must be columns of equal length', () => {
  const ok = { type: 'points', run: 'r', reset: false, step: [1, 2], time: [10, 11], metrics: { loss: [1, null] } };
  assert.deepEqual(parseHostToDashboard(ok), ok);
  assert.equal(parseHostToDashboard({ ...ok, metrics: { loss: [1] } }), undefined);
  assert.equal(parseHostToDashboard({ ...ok, time: [10, null] }), undefined);
  assert.equal(parseHostToDashboard({ ...ok, metrics: { 'bad name!': [1, 2] } }), undefined);
});

test('samples for the dashboard are checked row by row, and at most MAX_SAMPLE_ROWS a message', () => {
  const ok = { type: 'samples', run: 'ppo-1', reset: true, rows: [{ step: 1, prompt: 'p', response: 'r', score: 0.5, kl: null }] };
  assert.deepEqual(parseHostToDashboard(ok), ok);
  assert.equal(parseHostToDashboard({ ...ok, rows: [{ step: 1, prompt: 'p' }] }), undefined);
  assert.equal(parseHostToDashboard({ ...ok, rows: [{ step: 1, prompt: 'p', response: 'r', score: 'x' }] }), undefined);
  assert.equal(parseHostToDashboard({ ...ok, reset: 'yes' }), undefined);
  assert.equal(parseHostToDashboard({ ...ok, rows: Array(MAX_SAMPLE_ROWS + 1).fill(ok.rows[0]) }), undefined);
});

test('stage metrics come first in the paper\'s order, the rest by name', () => {
  assert.deepEqual(orderMetrics('rm', ['zeta', 'margin', 'loss', 'accuracy', 'alpha']), ['loss', 'accuracy', 'margin', 'alpha', 'zeta']);
});

test('worker messages keep their validation', () => {
  assert.equal(parseHostMessage({ type: 'start', argv: ['a', 1] }), undefined);
  assert.equal(parseWorkerMessage({ type: 'progress', stage: 's', step: NaN, total: 1, eta_seconds: 0, metrics: {} }), undefined);
});
