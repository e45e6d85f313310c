import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { FIXTURES, ROOT, tmpDir } from '../helpers';

// The built command line, as users run it (npm test builds dist/ first).
const CLI = path.join(ROOT, 'dist', 'cli.js');

function rlhf(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, RLHF_DEBUG: '' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function oneClearLine(r: { code: number | null; stderr: string }, pattern: RegExp) {
  assert.notEqual(r.code, 0);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at |Error:/, 'no stack trace');
}

test('rlhf generate with a missing model directory: one clear line, non-zero exit', () => {
  oneClearLine(rlhf('generate', '--model', '/nonexistent/model', '--prompt', 'hi'), /^rlhf generate: model directory not found: \/nonexistent\/model$/);
});

test('rlhf generate with a corrupt model directory: one clear line, non-zero exit', () => {
  const dir = path.join(tmpDir(), 'broken');
  fs.cpSync(path.join(FIXTURES, 'tiny-gpt2'), dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'model.safetensors'), 'garbage that is not safetensors');
  oneClearLine(rlhf('generate', '--model', dir, '--prompt', 'hi'), /describes \d+ parameters, but model\.safetensors has only 31 bytes/);
  fs.writeFileSync(path.join(dir, 'config.json'), '{');
  oneClearLine(rlhf('generate', '--model', dir, '--prompt', 'hi'), /config\.json is not valid JSON/);
});

test('rlhf generate with a bad flag or value: one clear line, exit 2', () => {
  const r = rlhf('generate', '--model', path.join(FIXTURES, 'tiny-gpt2'), '--prompt', 'hi', '--temprature', '1');
  oneClearLine(r, /unknown option --temprature for "rlhf generate"/);
  assert.equal(r.code, 2);
  oneClearLine(rlhf('generate', '--model', 'x', '--prompt', 'hi', '--top-p', 'lots'), /--top-p must be a number/);
});

test('rlhf generate --backend gpu without CUDA: one clear line with the fix', () => {
  const r = rlhf('generate', '--model', path.join(FIXTURES, 'tiny-gpt2'), '--prompt', 'hi', '--backend', 'gpu');
  oneClearLine(r, /GPU backend unavailable: .*tfjs-node-gpu.*CUDA 11\.2.*--backend auto/);
});

test('rlhf logprobs --json prints the tokens exactly as the tokenizer gives them', () => {
  const r = rlhf('logprobs', '--model', path.join(FIXTURES, 'tiny-gpt2'), '--text', 'Hello world', '--json', '--backend', 'wasm');
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(out.tokens, [15496, 995]);
  assert.equal(out.logprobs.length, 1);
});

test('rlhf logprobs --ids scores token ids without the tokenizer (a Llama model, the PyTorch reference)', () => {
  const dir = path.join(FIXTURES, 'tiny-llama', 'llama-gqa');
  const expected = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8'));
  const ids: number[] = expected.ids.slice(0, 12);
  const r = rlhf('logprobs', '--model', dir, '--ids', ids.join(','), '--json', '--backend', 'wasm');
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(out.tokens, ids);
  out.logprobs.forEach((x: number, i: number) => assert.ok(Math.abs(x - expected.logprobs[i][ids[i + 1]]) < 2e-3, `token ${i + 1}`));
  oneClearLine(rlhf('logprobs', '--model', dir, '--ids', '3,x,5'), /--ids: "x" is not a token id of this model \(whole numbers from 0 to 95\)/);
  oneClearLine(rlhf('logprobs', '--model', dir, '--ids', '3,96'), /--ids: "96" is not a token id/);
});

test('rlhf generate samples with the chosen seed and reports tokens/s', () => {
  const args = ['generate', '--model', path.join(FIXTURES, 'tiny-gpt2'), '--prompt', 'Call me', '--raw', '--max-tokens', '5', '--seed', '7', '--json', '--num-samples', '2'];
  const a = JSON.parse(rlhf(...args).stdout.trim().split('\n').at(-1)!);
  const b = JSON.parse(rlhf(...args).stdout.trim().split('\n').at(-1)!);
  assert.equal(a.tokens.length, 2);
  assert.deepEqual(a.tokens, b.tokens);
  assert.ok(a.tokens_per_second > 0);
});

test('every command has --help', () => {
  for (const c of ['pretrain', 'sft', 'rm', 'ppo', 'pipeline', 'resume', 'generate', 'logprobs', 'bench', 'demo', 'validate', 'stats', 'convert', 'agreement']) {
    const r = rlhf(c, '--help');
    assert.equal(r.code, 0, c);
    assert.match(r.stdout, /Options:/);
  }
  assert.match(rlhf('--help').stdout, /Commands:/);
  oneClearLine(rlhf('frobnicate'), /unknown command "frobnicate"/);
});

test('rlhf generate --stream reports the responses so far, then the same result as without it', () => {
  const model = path.join(ROOT, 'examples', 'workspace', 'models', 'base-char');
  const args = ['generate', '--model', model, '--prompt', 'Tell me about the ferry.', '--num-samples', '3', '--max-tokens', '200', '--temperature', '0.9', '--seed', '5', '--json'];
  const plain = rlhf(...args), streamed = rlhf(...args, '--stream');
  assert.equal(plain.code, 0, plain.stderr);
  assert.equal(streamed.code, 0, streamed.stderr);
  const lines = streamed.stdout.trim().split('\n').map((l) => JSON.parse(l));
  const partial = lines.filter((l) => l.type === 'partial');
  const result = lines[lines.length - 1];
  assert.equal(result.type, 'result');
  assert.deepEqual(result.responses, JSON.parse(plain.stdout.trim().split('\n').pop()!).responses, 'streaming does not change what is sampled');
  assert.ok(partial.length >= 1, 'at least one partial report over 200 tokens');
  for (const p of partial) p.responses.forEach((r: string, i: number) => assert.ok(result.responses[i].startsWith(r.replace(/\uFFFD+$/, '')), 'a partial response is a prefix of the final one'));
});

test('rlhf agreement FILE reports agreement between annotators who ranked the same responses', () => {
  const file = path.join(tmpDir(), 'two.rm.jsonl');
  const item = { prompt: 'p', responses: ['a', 'b', 'c', 'd'] };
  fs.writeFileSync(file, [{ ...item, ranks: [2, 4, 1, 3], annotator: 'x' }, { ...item, ranks: [1, 4, 2, 3], annotator: 'y' }, { ...item, ranks: [1, 1, 1, 1], annotator: 'z', flags: ['not_rankable'] }].map((r) => JSON.stringify(r)).join('\n') + '\n');
  const r = rlhf('agreement', file, '--json');
  assert.equal(r.code, 0, r.stderr);
  const a = JSON.parse(r.stdout);
  assert.deepEqual([a.items, a.annotators], [1, ['x', 'y']], 'the not-rankable record does not count');
  assert.equal(a.pairwise_agreement.toFixed(4), (5 / 6).toFixed(4));
  assert.equal(a.kendall_tau_b[0].tau_b.toFixed(4), (4 / 6).toFixed(4));
});
