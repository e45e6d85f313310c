/** rlhf compare and rlhf evaluate: the items of a blind comparison, a judge's votes, the results. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { FIXTURES, ROOT, tmpDir } from '../helpers';
import { readItems, readVotes } from '../../src/data/evaluation-file';
import { firstOnLeft, summarize } from '../../src/data/evaluation';

const CLI = path.join(ROOT, 'dist', 'cli.js');
const rlhf = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, RLHF_DEBUG: '' } });
const BASE = path.join(ROOT, 'examples', 'workspace', 'models', 'base-char');
const HELDOUT = path.join(ROOT, 'examples', 'workspace', 'data', 'reviews-heldout.ppo.jsonl');

test('rlhf compare makes blind items (sides from recorded seeds); the gold judge votes once per item; rlhf evaluate reports what the votes say', () => {
  const dir = tmpDir(), items = path.join(dir, 'items.jsonl'), votes = path.join(dir, 'votes.rm.jsonl');
  const c = rlhf('compare', '--models', `${BASE},${path.join(FIXTURES, 'tiny-gpt2')}`, '--prompts', HELDOUT, '--items', '8', '--max-tokens', '12', '--name', 'base-vs-tiny', '--out', items, '--backend', 'wasm', '--json');
  assert.equal(c.status, 0, c.stderr);
  const { header, items: xs } = readItems(items);
  assert.equal(header.evaluation, 'base-vs-tiny');
  assert.equal(xs.length, 8);
  for (const x of xs) {
    assert.equal(firstOnLeft(x.seed) ? BASE : path.join(FIXTURES, 'tiny-gpt2'), x.left.model, 'the side comes from the recorded seed');
    assert.ok(x.left.response.length > 0 && x.right.response.length > 0);
  }
  const j = rlhf('evaluate', votes, '--items', items, '--judge', 'gold', '--json');
  assert.equal(j.status, 0, j.stderr);
  const res = JSON.parse(j.stdout);
  assert.equal(res.votes, 8);
  assert.deepEqual(res.annotators, { 'judge:gold': 8 });
  assert.deepEqual(res.pairs, summarize(readVotes(votes).votes).pairs, 'the command and the library agree');
  // a judge votes once per item
  assert.equal(JSON.parse(rlhf('evaluate', votes, '--items', items, '--judge', 'gold', '--json').stdout).votes, 8);
  const text = rlhf('evaluate', votes);
  assert.match(text.stdout, /^8 vote\(s\) on 2 model\(s\)/);
  assert.match(text.stdout, /wins \d+\.\d% \[95% CI \d+\.\d%, \d+\.\d%\]/);
});

test('rlhf compare and evaluate refuse bad input with one clear line', () => {
  const dir = tmpDir();
  const one = (r: ReturnType<typeof rlhf>, re: RegExp) => {
    assert.notEqual(r.status, 0);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, re);
  };
  one(rlhf('compare', '--models', BASE, '--prompts', HELDOUT), /two or more model folders/);
  one(rlhf('compare', '--models', `${BASE},${BASE}`, '--prompts', HELDOUT), /the same model was chosen twice/);
  one(rlhf('compare', '--models', `${BASE},/nonexistent`, '--prompts', HELDOUT), /nonexistent/);
  one(rlhf('evaluate', path.join(dir, 'none.rm.jsonl')), /file not found/);
  fs.writeFileSync(path.join(dir, 'plain.rm.jsonl'), JSON.stringify({ prompt: 'p', chosen: 'a', rejected: 'b' }) + '\n');
  one(rlhf('evaluate', path.join(dir, 'plain.rm.jsonl')), /has no vote/);
  one(rlhf('evaluate', path.join(dir, 'plain.rm.jsonl'), '--ties', 'third'), /--ties must be half or exclude/);
  one(rlhf('evaluate', path.join(dir, 'v.rm.jsonl'), '--judge', 'gold'), /--judge needs --items/);
});
