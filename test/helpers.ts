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
