/**
 * The model folder's own tokenizer.json, run by @huggingface/tokenizers, against independent
 * tokenizers: Llama 3's byte-level BPE (llama3-tokenizer-js) and Llama 2's BPE with byte fallback
 * (llama-tokenizer-js), each checked by its authors against Meta's reference. Their vocabularies
 * and merges are written here as the tokenizer.json those models ship on the Hub (same
 * normalizer, pre-tokenizer, model and decoder settings). Chat templates against renderings by
 * Transformers' own jinja2 environment (test/fixtures/make_chat_templates.py).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { FIXTURES } from '../helpers';
import { HfTokenizer } from '../../src/engine/tokenizer';
import { ChatTemplate } from '../../src/engine/chat';

const TEXTS = [
  'Hello world! How are you today?',
  "It's 3.14159 -- isn't it? (yes) 12345678",
  'Café, naïve, façade, Ångström, Zürich',
  '東京は日本の首都です。你好，世界。',
  'Emoji: 🙂👍🏽 🇫🇷 and 🧑‍💻 mixed',
  'tabs\tand   runs    of spaces\n\n\nnew lines  \n  end ',
  '   leading spaces and trailing   ',
  'def f(x):\n    return x ** 2  # square',
];

function mergesInOrder(merges: Map<string, number>): string[] {
  return [...merges.entries()].sort((a, b) => a[1] - b[1]).map(([k]) => k);
}

const addedToken = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });

async function llama3Json() {
  const { default: ref } = (await import('llama3-tokenizer-js')) as unknown as { default: { vocabById: string[]; merges: Map<string, number>; encode(t: string, o: object): number[] } };
  const vocab: Record<string, number> = {};
  const added: ReturnType<typeof addedToken>[] = [];
  ref.vocabById.forEach((t, id) => (id >= 128000 ? added.push(addedToken(id, t)) : (vocab[t] = id)));
  const json = {
    version: '1.0', truncation: null, padding: null, added_tokens: added, normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: true, vocab, merges: mergesInOrder(ref.merges) },
  };
  const config = { bos_token: '<|begin_of_text|>', eos_token: '<|eot_id|>', chat_template: null };
  return { ref, json: JSON.stringify(json), config: JSON.stringify(config) };
}

async function llama2Json() {
  const { default: ref } = (await import('llama-tokenizer-js')) as unknown as { default: { vocabById: string[]; merges: Map<string, number>; encode(t: string, bos?: boolean, space?: boolean): number[] } };
  const vocab: Record<string, number> = {};
  ref.vocabById.forEach((t, id) => (vocab[t] = id));
  const json = {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [addedToken(0, '<unk>'), addedToken(1, '<s>'), addedToken(2, '</s>')],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
    pre_tokenizer: null,
    post_processor: null,
    decoder: { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }] },
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, vocab, merges: mergesInOrder(ref.merges) },
  };
  const config = { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', add_bos_token: true };
  return { ref, json: JSON.stringify(json), config: JSON.stringify(config) };
}

test("byte-level BPE (Llama 3's tokenizer.json): ids equal the reference for ASCII, accents, CJK, emoji, whitespace runs and special tokens", async () => {
  const { ref, json, config } = await llama3Json();
  const tok = new HfTokenizer(json, config);
  assert.equal(tok.vocabSize, 128256);
  assert.equal(tok.eot, 128009, 'eos_token <|eot_id|>');
  assert.equal(tok.bos, 128000);
  for (const text of [...TEXTS, '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>']) {
    const want = ref.encode(text, { bos: false, eos: false });
    assert.deepEqual(tok.encode(text), want, JSON.stringify(text));
    assert.equal(tok.decode(want), text, `decode ${JSON.stringify(text)}`);
  }
});

test("BPE with byte fallback (Llama 2's tokenizer.json): ids equal the reference, unknown characters as bytes", async () => {
  const { ref, json, config } = await llama2Json();
  const tok = new HfTokenizer(json, config);
  assert.equal(tok.vocabSize, 32000);
  assert.equal(tok.eot, 2);
  for (const text of TEXTS) {
    const want = ref.encode(text, false, true);
    assert.deepEqual(tok.encode(text), want, JSON.stringify(text));
  }
  // characters outside the vocabulary become their UTF-8 bytes <0xNN> (ids 3 + byte)
  const ids = tok.encode('🧑');
  assert.deepEqual(ids.slice(-4), [...Buffer.from('🧑', 'utf8')].map((b) => 3 + b));
  assert.equal(tok.decode(tok.encode('Zürich 東京 🧑‍💻')), 'Zürich 東京 🧑‍💻');
  assert.deepEqual(tok.encode('</s>'), [2], 'special tokens in text are their ids, as Transformers encodes them');
});

test('a tokenizer_config.json without an end-of-text token, and an unreadable tokenizer.json, are refused in one line', async () => {
  const { json } = await llama2Json();
  assert.throws(() => new HfTokenizer(json, JSON.stringify({ bos_token: '<s>' })), /names no end-of-text token/);
  assert.equal(new HfTokenizer(json, JSON.stringify({}), 2).eot, 2, "the model's eos_token_id when the tokenizer names none");
});

test("chat templates render exactly as Transformers' jinja2 environment renders them, generation prompt included", () => {
  const fx = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'chat-templates', 'expected.json'), 'utf8'));
  for (const c of fx.cases) {
    const tpl = new ChatTemplate(fx.templates[c.template], fx.special);
    const extra = c.template === 'tojson-tools' ? { tools: fx.tools } : {};
    const what = `${c.template}, conversation ${c.conversation}, add_generation_prompt ${c.add_generation_prompt}`;
    if (c.error) assert.throws(() => tpl.render(fx.conversations[c.conversation], c.add_generation_prompt, extra), new RegExp(c.error.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')), what);
    else assert.equal(tpl.render(fx.conversations[c.conversation], c.add_generation_prompt, extra), c.text, what);
  }
});

test('a conversation cut for training: the loss on assistant turns only, the turns rendering the whole conversation', () => {
  const fx = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'chat-templates', 'expected.json'), 'utf8'));
  const conv = [...fx.conversations[1], { role: 'assistant', content: 'Green.' }];
  for (const name of ['chatml-default-system', 'llama3-instruct', 'zephyr-blocks']) {
    const tpl = new ChatTemplate(fx.templates[name], fx.special);
    const segs = tpl.segments(conv);
    assert.equal(segs.map((s) => s.text).join(''), tpl.render(conv, false), name);
    const trained = segs.filter((s) => s.train).map((s) => s.text);
    assert.equal(trained.length, 2, name);
    assert.ok(trained[0].startsWith('Blue.') && trained[1].startsWith('Green.'), `${name}: ${JSON.stringify(trained)}`);
    assert.ok(segs.filter((s) => !s.train).every((s) => !s.text.includes('Blue.') && !s.text.includes('Green.')), name);
  }
  assert.throws(() => new ChatTemplate('{% for m in messages %}{{ m.content }', {}), /does not parse/);
});
