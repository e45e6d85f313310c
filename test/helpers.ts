import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { initBackend } from '../src/engine/backends/backend';

/** Tests run on the default CPU backend (WebAssembly); RLHF_TEST_BACKEND overrides. */
export function testBackend() {
  return initBackend((process.env.RLHF_TEST_BACKEND as 'wasm') ?? 'wasm');
}

export function tmpDir(prefix = 'rlhf-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export const ROOT = path.resolve(__dirname, '..');
export const FIXTURES = path.join(ROOT, 'test', 'fixtures');

/** A tiny character-level GPT (1 layer, 2 heads, 16 wide, 48 positions) saved as a model folder. */
export async function saveTinyModel(dir: string, tok: import('../src/engine/tokenizer').CharTokenizer, seed = 5): Promise<void> {
  const { GPT } = await import('../src/engine/model');
  const { defaultConfig } = await import('../src/engine/config');
  const { saveModel } = await import('../src/engine/checkpoint');
  const model = GPT.init(defaultConfig({ n_layer: 1, n_head: 2, n_embd: 16, n_positions: 48, vocab_size: tok.vocabSize }), seed);
  await saveModel(model, tok, dir);
  model.dispose();
}

/**
 * A tiny character-level model of the Llama layout (2 layers, 4 query heads sharing 2 key/value
 * heads, 16 wide, SwiGLU 32, untied head, rope_theta 5e5), saved as a model folder; `qwen2` for
 * Qwen2's q/k/v biases.
 */
export async function saveTinyLlama(dir: string, tok: import('../src/engine/tokenizer').CharTokenizer, seed = 5, arch: 'llama' | 'qwen2' = 'llama'): Promise<void> {
  const { initModel } = await import('../src/engine/causal-lm');
  const { configFromJson } = await import('../src/engine/config');
  const { saveModel } = await import('../src/engine/checkpoint');
  const model = initModel(configFromJson({
    model_type: arch, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2,
    max_position_embeddings: 48, vocab_size: tok.vocabSize, rms_norm_eps: 1e-5, rope_theta: 500000, tie_word_embeddings: false, tokenizer: 'char',
  }), seed);
  await saveModel(model, tok, dir);
  model.dispose();
}

/** GPT-2's byte -> printable character table (byte-level BPE's alphabet). */
function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const out: string[] = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) out[b] = bs.includes(b) ? String.fromCharCode(b) : String.fromCharCode(256 + n++);
  return out;
}

export const CHATML_TEMPLATE =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}" +
  "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/**
 * A tiny byte-level BPE tokenizer.json as SmolLM2-Instruct and Qwen2 ship theirs (the 256 byte
 * symbols, a few merges, <|endoftext|> <|im_start|> <|im_end|> as added special tokens) and a
 * tokenizer_config.json with a ChatML chat template: 264 tokens.
 */
export function tinyChatTokenizerFiles(): Record<string, string> {
  const b2u = bytesToUnicode();
  const vocab: Record<string, number> = {};
  b2u.forEach((c, i) => (vocab[c] = i));
  const merges = ['Ġ t', 'h e', 'Ġt he', 'i n', 'e r', 'Ġ a'];
  for (const m of merges) vocab[m.replace(' ', '')] = Object.keys(vocab).length;
  const specials = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];
  const n = Object.keys(vocab).length;
  const json = {
    version: '1.0', truncation: null, padding: null,
    added_tokens: specials.map((content, i) => ({ id: n + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges },
  };
  const config = { bos_token: null, eos_token: '<|im_end|>', pad_token: '<|endoftext|>', unk_token: '<|endoftext|>', model_max_length: 64, chat_template: CHATML_TEMPLATE, tokenizer_class: 'GPT2Tokenizer' };
  return { 'tokenizer.json': JSON.stringify(json), 'tokenizer_config.json': JSON.stringify(config, null, 2) };
}

/** A tiny Llama-layout chat model (the tokenizer above, a ChatML template), as a Hub folder would hold it. */
export async function saveTinyChatLlama(dir: string, seed = 5): Promise<void> {
  const fs = await import('fs');
  const { initModel } = await import('../src/engine/causal-lm');
  const { configFromJson } = await import('../src/engine/config');
  const { writeModelDir } = await import('../src/engine/checkpoint');
  const { HfTokenizer } = await import('../src/engine/tokenizer');
  const files = tinyChatTokenizerFiles();
  const tok = new HfTokenizer(files['tokenizer.json'], files['tokenizer_config.json']);
  const config = configFromJson({
    model_type: 'llama', architectures: ['LlamaForCausalLM'], hidden_size: 16, intermediate_size: 32, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2,
    max_position_embeddings: 96, vocab_size: tok.vocabSize, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: true,
    bos_token_id: null, eos_token_id: tok.eot, pad_token_id: tok.tokenToId('<|endoftext|>'), torch_dtype: 'bfloat16',
  });
  const model = initModel(config, seed);
  const weights = await model.weights();
  model.dispose();
  writeModelDir(dir, config, weights, tok, { dtype: 'BF16', files: { 'generation_config.json': JSON.stringify({ bos_token_id: null, eos_token_id: tok.eot }) } });
  fs.writeFileSync(`${dir}/README.md`, '# tiny-chat-llama\nA random test model made by test/helpers.ts.\n');
}

/** Mesa's Vulkan driver when the machine has no Vulkan driver (scripts/webgpu-setup.mjs). */
export async function ensureVulkan(): Promise<void> {
  const setup = (await import(path.join(ROOT, 'scripts', 'webgpu-setup.mjs'))) as { ensureVulkan: (o: { quiet: boolean }) => unknown };
  setup.ensureVulkan({ quiet: true });
}

/**
 * Starts WebGPU (then `then`, if given): undefined when it came up, else why not. With
 * RLHF_REQUIRE_WEBGPU=1 (CI) a missing adapter is a failure, not a reason to skip.
 */
export async function startWebGpuForTests(then?: 'wasm'): Promise<string | undefined> {
  try {
    await ensureVulkan();
    await initBackend('webgpu');
    if (then) await initBackend(then);
    return undefined;
  } catch (e) {
    const why = (e as Error).message;
    if (process.env.RLHF_REQUIRE_WEBGPU === '1') throw new Error(`RLHF_REQUIRE_WEBGPU=1 and WebGPU did not start: ${why}`);
    return why;
  }
}

/**
 * A tiny character model (`sft/`) and toy data in `root`: toy.sft.jsonl (30 demonstrations),
 * toy.rm.jsonl (30 K = 3 rankings by the simulated labeler, seeded) and toy.ppo.jsonl (3 prompts).
 */
export async function writeToyWorkspace(root: string, tok: import('../src/engine/tokenizer').CharTokenizer): Promise<void> {
  const { Rng } = await import('../src/engine/rng');
  const { labelRecord } = await import('../src/engine/labeler/labeler');
  await saveTinyModel(path.join(root, 'sft'), tok);
  const rng = new Rng(3);
  const words = ['good', 'bad', 'nice', 'sad'];
  fs.writeFileSync(path.join(root, 'toy.rm.jsonl'), Array.from({ length: 30 }, () => JSON.stringify(labelRecord('say it', [0, 1, 2].map(() => `it was ${words[rng.int(4)]}`), rng))).join('\n') + '\n');
  fs.writeFileSync(path.join(root, 'toy.sft.jsonl'), Array.from({ length: 30 }, (_, i) => JSON.stringify({ prompt: `say ${i % 5}`, response: 'it was good' })).join('\n') + '\n');
  fs.writeFileSync(path.join(root, 'toy.ppo.jsonl'), ['say it', 'tell me', 'go on'].map((p) => JSON.stringify({ prompt: p })).join('\n') + '\n');
}
