import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CharTokenizer, Gpt2Tokenizer } from '../../src/engine/tokenizer';

test('GPT-2 BPE gives the published ids', () => {
  const t = new Gpt2Tokenizer();
  assert.deepEqual(t.encode('Hello world'), [15496, 995]);
  assert.deepEqual(t.encode(' the'), [262]);
  assert.deepEqual(t.encode('GPT-2'), [38, 11571, 12, 17]);
  assert.equal(t.decode([15496, 995]), 'Hello world');
  assert.equal(t.vocabSize, 50257);
  assert.equal(t.eot, 50256);
});

test('GPT-2 BPE spells out "<|endoftext|>" inside user text instead of the special id', () => {
  const ids = new Gpt2Tokenizer().encode('a<|endoftext|>b');
  assert.ok(!ids.includes(50256));
  assert.equal(new Gpt2Tokenizer().decode(ids), 'a<|endoftext|>b');
});

test('char tokenizer round-trips its corpus and maps unknown characters to one id', () => {
  const t = CharTokenizer.fromText('hello world');
  assert.equal(t.vocabSize, 8 + 2);
  assert.equal(t.decode(t.encode('hello world')), 'hello world');
  assert.deepEqual(t.encode('z'), [CharTokenizer.UNK]);
  assert.equal(t.decode([t.eot]), '<|endoftext|>');
  const again = new CharTokenizer((t.toJson() as { chars: string[] }).chars);
  assert.deepEqual(again.encode('low'), t.encode('low'));
});
