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
