/**
 * `rlhf pipeline --algos`: every tuning algorithm from the same SFT model, one comparison table,
 * a summary.json key per algorithm. Tiny sizes on a trimmed copy of the example workspace (the
 * demo's own figures are in the README, from `npm run demo`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { ROOT, tmpDir } from '../helpers';

const CLI = path.join(ROOT, 'dist', 'cli.js');
const rlhf = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, RLHF_DEBUG: '' } });

/** The example workspace with its data files cut to their first lines. */
function smallWorkspace(): string {
  const ws = tmpDir();
  fs.mkdirSync(path.join(ws, 'data'));
  const src = path.join(ROOT, 'examples', 'workspace', 'data');
  for (const [f, n] of [['reviews.sft.jsonl', 40], ['reviews.rm.jsonl', 24], ['reviews.ppo.jsonl', 12], ['reviews-heldout.ppo.jsonl', 3]] as const)
    fs.writeFileSync(path.join(ws, 'data', f), fs.readFileSync(path.join(src, f), 'utf8').split('\n').slice(0, n).join('\n') + '\n');
  return ws;
}

const TINY = ['--pretrain-steps', '0', '--sft-steps', '2', '--rm-steps', '2', '--ppo-iterations', '1', '--dpo-steps', '2', '--grpo-iterations', '1', '--rloo-iterations', '1', '--eval-samples', '1', '--backend', 'wasm'];

test('rlhf pipeline trains PPO, DPO, GRPO and RLOO from one SFT model and compares them on held-out prompts', () => {
  const ws = smallWorkspace(), out = path.join(tmpDir(), 'demo');
  const r = rlhf('pipeline', '--workspace', ws, '--out', out, ...TINY);
  assert.equal(r.status, 0, r.stderr);
  const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
  assert.deepEqual(summary.algos, ['ppo', 'dpo', 'grpo', 'rloo']);
  for (const a of summary.algos) {
    const s = summary[a];
    for (const k of ['gold_mean', 'gold_se', 'rm_mean', 'kl_mean', 'seconds']) assert.equal(typeof s[k], 'number', `${a}.${k}`);
    assert.equal(s.n, 3, `${a}: one response to each of the 3 held-out prompts`);
    assert.ok(fs.existsSync(path.join(out, 'runs', a, 'checkpoints', 'final', 'model.safetensors')), `${a}'s model`);
    assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'runs', a, 'run.json'), 'utf8')).status, 'completed');
  }
  assert.equal(summary.tensors_left, 0, 'no tensor leaked across the seven stages and five evaluations');
  // the blind comparison against SFT by the gold scorer: in the summary, and as votes rlhf evaluate reads
  for (const a of summary.algos) {
    const b = summary[a].blind_vs_sft;
    assert.equal(b.n, 3);
    assert.equal(b.wins + b.losses + b.ties, 3);
    assert.ok(b.low <= b.win_rate && b.win_rate <= b.high);
    const e = rlhf('evaluate', path.join(out, 'blind.rm.jsonl'), '--evaluation', `pipeline-${a}`, '--json');
    assert.equal(e.status, 0, e.stderr);
    const p = JSON.parse(e.stdout).pairs[0];
    assert.deepEqual([p.a, p.b], [a, 'sft']);
    assert.equal(p.win_rate, b.win_rate);
  }
  // the table: one row per model, then each algorithm's gain over SFT in standard errors
  for (const row of ['SFT', 'PPO', 'DPO', 'GRPO', 'RLOO']) assert.match(r.stdout + r.stderr, new RegExp(`^${row} +-?\\d+\\.\\d\\d ± \\d+\\.\\d\\d`, 'm'));
  for (const a of ['PPO', 'DPO', 'GRPO', 'RLOO']) assert.match(r.stdout + r.stderr, new RegExp(`^${a} - SFT gold: -?\\d+\\.\\d\\d \\((-?\\d+\\.\\d|-) standard errors\\); blind vs SFT by the gold scorer: wins \\d+\\.\\d%`, 'm'));
});

test('rlhf pipeline --algos runs only the algorithms named, in that order; a bad name fails before anything is touched', () => {
  const ws = smallWorkspace(), out = path.join(tmpDir(), 'demo');
  const r = rlhf('pipeline', '--workspace', ws, '--out', out, ...TINY, '--algos', 'rloo,dpo');
  assert.equal(r.status, 0, r.stderr);
  const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
  assert.deepEqual(summary.algos, ['rloo', 'dpo']);
  assert.equal(summary.ppo, undefined);
  assert.deepEqual(fs.readdirSync(path.join(out, 'runs')).sort(), ['dpo', 'rloo', 'rm', 'sft']);
  for (const bad of ['ppo,sgd', 'dpo,dpo', ',']) {
    const b = rlhf('pipeline', '--workspace', ws, '--out', out, ...TINY, '--algos', bad);
    assert.notEqual(b.status, 0);
    assert.match(b.stderr.trim(), /^rlhf pipeline: --algos/);
    assert.equal(b.stderr.trim().split('\n').length, 1, b.stderr);
    assert.ok(fs.existsSync(path.join(out, 'runs', 'rloo', 'run.json')), 'the earlier runs are still there');
  }
});

test('rlhf pipeline --runs-dir puts its runs beside others (named by --run-prefix) and never empties that folder', () => {
  const ws = smallWorkspace(), out = path.join(tmpDir(), 'demo'), runs = path.join(tmpDir(), 'runs');
  fs.mkdirSync(path.join(runs, 'my-own-run'), { recursive: true });
  fs.writeFileSync(path.join(runs, 'my-own-run', 'run.json'), '{}');
  const r = rlhf('pipeline', '--workspace', ws, '--out', out, ...TINY, '--algos', 'dpo', '--runs-dir', runs, '--run-prefix', 'pipeline-1-');
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(fs.readdirSync(runs).sort(), ['my-own-run', 'pipeline-1-dpo', 'pipeline-1-rm', 'pipeline-1-sft']);
  assert.ok(fs.existsSync(path.join(out, 'summary.json')));
  const bad = rlhf('pipeline', '--workspace', ws, '--out', out, ...TINY, '--runs-dir', runs, '--run-prefix', '../x');
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /--run-prefix: letters, digits/);
});
