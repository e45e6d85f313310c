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
