/**
 * rlhf download against a Hub on 127.0.0.1 (test/hub-server.ts), selected by HF_ENDPOINT: a fresh
 * download into HF_HOME's cache, a download resumed after the client is killed mid-file, an
 * offline resolve, a 404 and a 401. No test reaches the internet.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { ROOT, saveTinyChatLlama, testBackend, tmpDir } from '../helpers';
import { HubServer, startHubServer } from '../hub-server';

const CLI = path.join(ROOT, 'dist', 'cli.js');
let hub: HubServer;
let modelDir: string;

before(async () => {
  testBackend();
  modelDir = path.join(tmpDir(), 'tiny-chat');
  await saveTinyChatLlama(modelDir, 11);
  hub = await startHubServer([
    { id: 'test-org/tiny-chat', dir: modelDir },
    { id: 'test-org/gated-chat', dir: modelDir, gatedToken: 'hf_secret' },
    { id: 'test-org/bad-listing', dir: modelDir, badOid: 'config.json' },
  ]);
});
after(() => hub.close());

/** The CLI in a child process, awaited (the Hub server runs in this process: a synchronous spawn would block it). */
function rlhf(env: Record<string, string>, ...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, HF_TOKEN: '', HF_HUB_OFFLINE: '', ...env } });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

const oneLine = (stderr: string) => stderr.trim().split('\n').filter((l) => l && !l.startsWith('Warning:'));

test('a fresh download: only the files a model needs, in the standard cache layout; the model then runs by its id', async () => {
  const home = tmpDir();
  fs.writeFileSync(path.join(modelDir, 'pytorch_model.bin'), 'not needed');
  const r = await rlhf({ HF_HOME: home, HF_ENDPOINT: hub.url }, 'download', 'test-org/tiny-chat', '--json');
  fs.rmSync(path.join(modelDir, 'pytorch_model.bin'));
  assert.equal(r.status, 0, r.stderr);
  const result = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  const root = path.join(home, 'hub', 'models--test-org--tiny-chat');
  assert.match(result.dir, new RegExp(`^${root}/snapshots/[0-9a-f]{40}$`));
  assert.equal(fs.readFileSync(path.join(root, 'refs', 'main'), 'utf8'), path.basename(result.dir));
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) {
    assert.ok(fs.lstatSync(path.join(result.dir, f)).isSymbolicLink(), `${f} links into blobs/`);
    assert.ok(fs.readFileSync(path.join(result.dir, f)).equals(fs.readFileSync(path.join(modelDir, f))), f);
  }
  assert.ok(!fs.existsSync(path.join(result.dir, 'pytorch_model.bin')), 'only safetensors weights');
  const progress = r.stdout.trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.type === 'download');
  assert.ok(progress.length > 0 && progress.at(-1).done === progress.at(-1).total, 'progress reaches the total');
  // the model by its id, from the cache, with no server at all (HF_ENDPOINT unreachable)
  const g = await rlhf({ HF_HOME: home, HF_ENDPOINT: 'http://127.0.0.1:9' }, 'generate', '--model', 'test-org/tiny-chat', '--prompt', 'hi', '--max-tokens', '3', '--backend', 'wasm', '--json');
  assert.equal(g.status, 0, g.stderr);
  // a second download finds everything there: no file is fetched again
  const before = hub.requests.filter((q) => q.url.includes('/resolve/')).length;
  assert.equal((await rlhf({ HF_HOME: home, HF_ENDPOINT: hub.url }, 'download', 'test-org/tiny-chat')).status, 0);
  assert.equal(hub.requests.filter((q) => q.url.includes('/resolve/')).length, before);
});

test('a download killed mid-file continues from where it stopped (Range), and the result is byte-equal', async () => {
  const home = tmpDir();
  const size = fs.readdirSync(modelDir).reduce((a, f) => a + fs.statSync(path.join(modelDir, f)).size, 0);
  hub.throttle(Math.ceil(size / 4)); // about 4 s for the whole model
  const child = spawn(process.execPath, [CLI, 'download', 'test-org/tiny-chat'], { env: { ...process.env, HF_HOME: home, HF_ENDPOINT: hub.url, HF_TOKEN: '' }, stdio: 'ignore' });
  const blobs = path.join(home, 'hub', 'models--test-org--tiny-chat', 'blobs');
  const partial = () => (fs.existsSync(blobs) ? fs.readdirSync(blobs).filter((f) => f.endsWith('.incomplete')) : []);
  for (let i = 0; i < 400 && !(partial().length && fs.statSync(path.join(blobs, partial()[0])).size > 1000); i++) await new Promise((r) => setTimeout(r, 25));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  hub.throttle(undefined);
  const part = partial();
  assert.equal(part.length, 1, 'a file is half there');
  const had = fs.statSync(path.join(blobs, part[0])).size;
  assert.ok(had > 0, `${had} bytes`);
  assert.ok(!fs.existsSync(path.join(home, 'hub', 'models--test-org--tiny-chat', 'snapshots')), 'no snapshot of a half model');
  const r = await rlhf({ HF_HOME: home, HF_ENDPOINT: hub.url }, 'download', 'test-org/tiny-chat', '--json');
  assert.equal(r.status, 0, r.stderr);
  assert.ok(hub.requests.some((q) => q.url.includes('/resolve/') && q.range === `bytes=${had}-`), `asked for the rest only: ${JSON.stringify(hub.requests.filter((q) => q.range))}, had ${had}`);
  const dir = JSON.parse(r.stdout.trim().split('\n').at(-1)!).dir;
  for (const f of fs.readdirSync(dir)) assert.ok(fs.readFileSync(path.join(dir, f)).equals(fs.readFileSync(path.join(modelDir, f))), f);
});

test('a connection broken mid-file: one clear line, a non-zero exit, the part kept for the next run', async () => {
  const home = tmpDir();
  hub.cutAfter('model.safetensors', 1000);
  const r = await rlhf({ HF_HOME: home, HF_ENDPOINT: hub.url }, 'download', 'test-org/tiny-chat');
  assert.notEqual(r.status, 0);
  assert.match(oneLine(r.stderr).join('\n'), /model\.safetensors arrived with 1000 of \d+ bytes; run it again to continue|connection broke during model\.safetensors/);
  assert.equal(oneLine(r.stderr).length, 1, r.stderr);
  assert.equal((await rlhf({ HF_HOME: home, HF_ENDPOINT: hub.url }, 'download', 'test-org/tiny-chat')).status, 0);
});

test('offline: HF_HUB_OFFLINE resolves a cached model without the network, and refuses one that is not cached', async () => {
  const home = tmpDir();
  assert.equal((await rlhf({ HF_HOME: home, HF_ENDPOINT: hub.url }, 'download', 'test-org/tiny-chat')).status, 0);
  const n = hub.requests.length;
  const r = await rlhf({ HF_HOME: home, HF_ENDPOINT: hub.url, HF_HUB_OFFLINE: '1' }, 'download', 'test-org/tiny-chat', '--json');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(hub.requests.length, n, 'no request');
  const miss = await rlhf({ HF_HOME: home, HF_ENDPOINT: hub.url, HF_HUB_OFFLINE: '1' }, 'download', 'test-org/other');
  assert.notEqual(miss.status, 0);
  assert.match(oneLine(miss.stderr)[0], /test-org\/other \(main\) is not in the cache .* and HF_HUB_OFFLINE is set/);
});

test('a model that does not exist (404) and a gated model without a token (401): one clear line each, nothing in the cache', async () => {
  const home = tmpDir();
  const nf = await rlhf({ HF_HOME: home, HF_ENDPOINT: hub.url }, 'download', 'test-org/nope');
  assert.notEqual(nf.status, 0);
  assert.deepEqual(oneLine(nf.stderr).length, 1, nf.stderr);
  assert.match(nf.stderr, /test-org\/nope: no such model on http:\/\/127\.0\.0\.1:\d+ \(status 404\)/);
  const gated = await rlhf({ HF_HOME: home, HF_ENDPOINT: hub.url }, 'download', 'test-org/gated-chat');
  assert.notEqual(gated.status, 0);
  assert.match(gated.stderr, /test-org\/gated-chat is gated or private \(status 401\): accept its licence on the Hub, then set HF_TOKEN/);
  assert.ok(!fs.existsSync(path.join(home, 'hub', 'models--test-org--nope')) && !fs.existsSync(path.join(home, 'hub', 'models--test-org--gated-chat')), 'nothing written');
  const ok = await rlhf({ HF_HOME: home, HF_ENDPOINT: hub.url, HF_TOKEN: 'hf_secret' }, 'download', 'test-org/gated-chat');
  assert.equal(ok.status, 0, ok.stderr);
  // a model id that is not in the cache, given as --model: one line naming the fix
  const g = await rlhf({ HF_HOME: home }, 'generate', '--model', 'test-org/not-downloaded', '--prompt', 'hi', '--backend', 'wasm');
  assert.notEqual(g.status, 0);
  assert.match(g.stderr, /test-org\/not-downloaded is neither a folder nor a model in the Hugging Face cache .*; download it first: rlhf download test-org\/not-downloaded/);
});

test('a listing whose file hash is not a hash (a path) is refused before anything is written', async () => {
  const home = tmpDir();
  const r = await rlhf({ HF_HOME: home, HF_ENDPOINT: hub.url }, 'download', 'test-org/bad-listing');
  assert.notEqual(r.status, 0);
  assert.deepEqual(oneLine(r.stderr).length, 1, r.stderr);
  assert.match(r.stderr, /test-org\/bad-listing: the Hub listed config\.json without a valid hash \("\.\.\/\.\.\/config\.json"\); not downloading it/);
  assert.ok(!fs.existsSync(path.join(home, 'hub')), 'nothing written');
});
