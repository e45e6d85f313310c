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
