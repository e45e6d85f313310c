/**
 * Fuzzing `rlhf validate`, `rlhf stats` and model loading (`rlhf logprobs`) with generated bad
 * inputs: every dataset the review's findings name plus seeded mutations of the example data
 * (truncations, flipped and inserted bytes, invalid UTF-8, wrong field types, nesting, huge lines,
 * FIFOs, devices, folders), and model folders with broken configs, safetensors, tokenizers and files.
 * Each command runs in its own process under /usr/bin/time with a 10 s limit, and is classed:
 *   clear       exit 0 or 1 (2 for usage), no stack trace
 *   stack trace a "    at " line in its output
 *   hang        still running after 10 s
 *   crash       killed by a signal or another exit code
 *   over 1 GB   peak resident memory above 1 GiB
 * Run whole with `npm run fuzz`; test/security/fuzz.test.ts runs a seeded sample in `npm test`.
 */
import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { readSafetensors, serializeSafetensors } from '../../src/engine/safetensors';

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'cli.js');
const DATA = path.join(ROOT, 'examples', 'workspace', 'data');
const TINY = path.join(ROOT, 'test', 'fixtures', 'tiny-gpt2');
const CHAR = path.join(ROOT, 'examples', 'workspace', 'models', 'base-char');

/** A small seeded generator (mulberry32), so a failing case can be made again. */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Maker = (dir: string) => string;

/** The dataset cases: named ones first (the review's findings), then seeded mutations. */
export function datasetCases(count: number, seed = 1): { name: string; make: Maker }[] {
  const r = rng(seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)];
  const src = ['reviews.sft.jsonl', 'reviews.rm.jsonl', 'reviews.ppo.jsonl'].map((f) => ({ f, bytes: fs.readFileSync(path.join(DATA, f)).subarray(0, 20_000) }));
  const write = (name: string, data: string | Buffer) => (dir: string) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, data);
    return f;
  };
  const named: { name: string; make: Maker }[] = [
    { name: '19 MB line of [', make: write('deep.rm.jsonl', '['.repeat(19e6) + '\n') },
    { name: '60 MB line of [ (under the 64 MiB limit)', make: write('bracket.rm.jsonl', '['.repeat(60e6)) },
    { name: '100k-deep id', make: write('deep-id.rm.jsonl', '{"prompt":"x","chosen":"a","rejected":"b","id":' + '['.repeat(1e5) + ']'.repeat(1e5) + '}\n{"prompt":"y","chosen":"a","rejected":"b"}\n') },
    { name: 'a line over the size limit', make: write('huge.sft.jsonl', '{"prompt":"' + 'x'.repeat(70 << 20) + '"}\n') },
    { name: 'FIFO', make: (dir) => (execFileSync('mkfifo', [path.join(dir, 'fifo.rm.jsonl')]), path.join(dir, 'fifo.rm.jsonl')) },
    { name: 'link to /dev/zero', make: (dir) => (fs.symlinkSync('/dev/zero', path.join(dir, 'zero.sft.jsonl')), path.join(dir, 'zero.sft.jsonl')) },
    { name: 'a folder', make: (dir) => (fs.mkdirSync(path.join(dir, 'folder.ppo.jsonl')), path.join(dir, 'folder.ppo.jsonl')) },
    { name: 'a symlink loop', make: (dir) => (fs.symlinkSync('loop.rm.jsonl', path.join(dir, 'loop.rm.jsonl')), path.join(dir, 'loop.rm.jsonl')) },
    { name: 'empty', make: write('empty.rm.jsonl', '') },
    { name: 'binary', make: write('binary.jsonl', Buffer.from(Array.from({ length: 4096 }, () => Math.floor(r() * 256)))) },
    { name: 'NUL bytes', make: write('nul.sft.jsonl', '{"prompt":"a\0b","response":"c"}\n\0\0\0\n') },
    { name: 'lone surrogate escapes', make: write('surrogate.sft.jsonl', '{"prompt":"\\ud800","response":"\\udfff"}\n') },
    { name: 'BOM on every line, CRLF', make: write('bom.ppo.jsonl', '\ufeff{"prompt":"a"}\r\n\ufeff{"prompt":"b"}\r\n') },
    { name: 'a .txt corpus with invalid UTF-8', make: write('corpus.txt', Buffer.concat([Buffer.from('call me ishmael\n'), Buffer.from([0xc3, 0x28, 10])])) },
    { name: 'a million containers in one line', make: write('wide.rm.jsonl', '{"prompt":"p","chosen":"a","rejected":"b","x":[' + '[],'.repeat(1e6) + '[]]}\n') },
  ];
  const fields: [string, unknown[]][] = [
    ['prompt', [null, 1, [], {}, '', 'x'.repeat(100_000)]],
    ['responses', [null, [], ['a'], Array(10).fill('a'), [1, 2], ['', 'b'], 'ab']],
    ['ranks', [null, [0, 1], [1, 1.5], [1, 99], ['1', '2'], [-1, 1], [1]]],
    ['chosen', [null, 1, '', ['a']]],
    ['response', [null, 2, '', {}]],
    ['messages', [null, [], [{ role: 'user' }], [{ role: 7, content: 'x' }], 'hi', [{ role: 'user', content: 'a' }]]],
    ['id', [null, {}, [1, [2]], 1e308, 'dup']],
    ['margin', ['big', null, 1e400]],
  ];
  const mutations: ((b: Buffer) => Buffer)[] = [
    (b) => b.subarray(0, Math.floor(r() * b.length)), // truncated anywhere
    (b) => { const c = Buffer.from(b); for (let i = 0; i < 5; i++) c[Math.floor(r() * c.length)] = Math.floor(r() * 256); return c; },
    (b) => { const at = Math.floor(r() * b.length); return Buffer.concat([b.subarray(0, at), Buffer.from([pick([0xff, 0xc0, 0xed, 0xf8, 0x80])]), b.subarray(at)]); },
    (b) => Buffer.from(b.toString('latin1').replace(/"/g, () => (r() < 0.01 ? '' : '"')), 'latin1'),
    (b) => Buffer.from(b.toString('utf8').split('\n').map((l) => (r() < 0.05 ? l.replace(/[{}]/, '') : l)).join('\n')),
    (b) => { const lines = b.toString('utf8').split('\n'); lines.splice(Math.floor(r() * lines.length), 0, pick(['null', '[]', '42', '"s"', '{}', '{"a":', 'true'])); return Buffer.from(lines.join('\n')); },
    (b) => Buffer.from(b.toString('utf8').split('\n').map((l) => { if (!l || r() > 0.1) return l; let o; try { o = JSON.parse(l); } catch { return l; } const [k, vs] = pick(fields); o[k] = pick(vs); return JSON.stringify(o); }).join('\n')),
    (b) => Buffer.concat([b, b]), // every id twice
  ];
  const out = [...named];
  for (let i = 0; out.length < count; i++) {
    const s = pick(src);
    const m = pick(mutations);
    const name = `${s.f.replace('reviews', `m${i}`)}`;
    out.push({ name: `mutation ${i} of ${s.f}`, make: write(name, m(s.bytes)) });
  }
  return out.slice(0, count);
}

/** The model-folder cases: configs, safetensors, tokenizers, files. */
export function modelCases(count: number, seed = 2): { name: string; make: Maker }[] {
  const r = rng(seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)];
  const base = (from: string) => (dir: string) => {
    const d = path.join(dir, 'model');
    fs.cpSync(from, d, { recursive: true });
    return d;
  };
  const edit = (from: string, fn: (d: string) => void) => (dir: string) => {
    const d = base(from)(dir);
    fn(d);
    return d;
  };
  const cfg = (from: string, k: string, v: unknown) => edit(from, (d) => {
    const c = JSON.parse(fs.readFileSync(path.join(d, 'config.json'), 'utf8'));
    if (v === undefined) delete c[k];
    else c[k] = v;
    fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify(c));
  });
  const st = (from: string, fn: (b: Buffer) => Buffer) => edit(from, (d) => {
    const f = path.join(d, 'model.safetensors');
    fs.writeFileSync(f, fn(fs.readFileSync(f)));
  });
  const tensors = (from: string, fn: (t: Map<string, { shape: number[]; data: Float32Array }>) => void) => edit(from, (d) => {
    const f = path.join(d, 'model.safetensors');
    const t = readSafetensors(f).tensors;
    fn(t);
    fs.writeFileSync(f, serializeSafetensors(t));
  });
  const special = (name: string, how: 'zero' | 'fifo' | 'dir' | 'missing' | 'loop') => (from: string) => edit(from, (d) => {
    const f = path.join(d, name);
    fs.rmSync(f, { force: true });
    if (how === 'zero') fs.symlinkSync('/dev/zero', f);
    if (how === 'fifo') execFileSync('mkfifo', [f]);
    if (how === 'dir') fs.mkdirSync(f);
    if (how === 'loop') fs.symlinkSync(name, f);
  });
  const header = (json: string, body = 16) => {
    const h = Buffer.from(json);
    const b = Buffer.alloc(8 + h.length + body);
    b.writeBigUInt64LE(BigInt(h.length));
    h.copy(b, 8);
    return b;
  };
  const named: { name: string; make: Maker }[] = [];
  for (const from of [TINY, CHAR]) {
    const tag = from === TINY ? 'gpt2' : 'char';
    for (const k of ['n_layer', 'n_head', 'n_embd', 'n_positions', 'vocab_size', 'layer_norm_epsilon', 'resid_pdrop']) {
      for (const v of [-1, 0, 3.5, 1e8, 'x', null, undefined, 1e308]) named.push({ name: `${tag} ${k} = ${JSON.stringify(v)}`, make: cfg(from, k, v) });
    }
    named.push({ name: `${tag} model_type llama-ish`, make: cfg(from, 'model_type', 'bert') });
    named.push({ name: `${tag} config not JSON`, make: edit(from, (d) => fs.writeFileSync(path.join(d, 'config.json'), '{')) });
    named.push({ name: `${tag} config null`, make: edit(from, (d) => fs.writeFileSync(path.join(d, 'config.json'), 'null')) });
    for (const f of ['config.json', 'model.safetensors']) for (const how of ['zero', 'fifo', 'dir', 'missing', 'loop'] as const) named.push({ name: `${tag} ${f} ${how}`, make: special(f, how)(from) });
    named.push({ name: `${tag} header length 2^63`, make: st(from, (b) => { const c = Buffer.from(b); c.writeBigUInt64LE(2n ** 63n); return c; }) });
    named.push({ name: `${tag} header not JSON`, make: st(from, () => header('{"a": ')) });
    named.push({ name: `${tag} offsets outside`, make: st(from, () => header('{"wte.weight": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 1000000]}}')) });
    named.push({ name: `${tag} negative shape`, make: st(from, () => header('{"wte.weight": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}}')) });
    named.push({ name: `${tag} huge shape`, make: st(from, () => header('{"wte.weight": {"dtype": "F32", "shape": [1e12, 1e12], "data_offsets": [0, 16]}}')) });
    named.push({ name: `${tag} unknown dtype`, make: st(from, () => header('{"wte.weight": {"dtype": "Q4", "shape": [4], "data_offsets": [0, 16]}}')) });
    named.push({ name: `${tag} truncated`, make: st(from, (b) => b.subarray(0, Math.floor(b.length / 3))) });
    named.push({ name: `${tag} Inf weight`, make: tensors(from, (t) => { const x = [...t.values()][2]; x.data[0] = Infinity; }) });
    named.push({ name: `${tag} NaN weight`, make: tensors(from, (t) => { const x = [...t.values()].at(-1)!; x.data[x.data.length - 1] = NaN; }) });
    named.push({ name: `${tag} missing tensor`, make: tensors(from, (t) => t.delete([...t.keys()][3])) });
    named.push({ name: `${tag} wrong shape`, make: tensors(from, (t) => { const k = [...t.keys()][4]; const x = t.get(k)!; t.set(k, { shape: [x.data.length], data: x.data }); }) });
  }
  named.push({ name: 'char tokenizer.json missing', make: special('tokenizer.json', 'missing')(CHAR) });
  named.push({ name: 'char tokenizer.json /dev/zero', make: special('tokenizer.json', 'zero')(CHAR) });
  named.push({ name: 'char tokenizer.json FIFO', make: special('tokenizer.json', 'fifo')(CHAR) });
  named.push({ name: 'char tokenizer not a vocabulary', make: edit(CHAR, (d) => fs.writeFileSync(path.join(d, 'tokenizer.json'), '{"type":"char","chars":[1,2]}')) });
  named.push({ name: 'char tokenizer larger than vocab_size', make: edit(CHAR, (d) => fs.writeFileSync(path.join(d, 'tokenizer.json'), JSON.stringify({ type: 'char', chars: Array.from({ length: 500 }, (_, i) => String.fromCodePoint(0x4e00 + i)) }))) });
  named.push({ name: 'not a folder', make: (dir) => (fs.writeFileSync(path.join(dir, 'file'), 'x'), path.join(dir, 'file')) });
  // sample evenly so a short run still meets every kind
  const out: { name: string; make: Maker }[] = [];
  const step = named.length / Math.min(count, named.length);
  for (let i = 0; out.length < Math.min(count, named.length); i++) out.push(named[Math.floor(i * step)]);
  while (out.length < count) out.push(pick(named));
  return out;
}

export type Outcome = 'clear' | 'stack trace' | 'hang' | 'crash' | 'over 1 GB';

export interface Run {
  name: string;
  command: string;
  outcome: Outcome;
  seconds: number;
  peakMb: number;
  firstLine: string;
  /** Exit code: 0 accepted the input, 1 refused it with its reasons. */
  code: number | null;
}

function runOne(name: string, args: string[], timeoutMs = 10_000): Promise<Run> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const p = spawn('/usr/bin/time', ['-q', '-f', '@@peak %M', process.execPath, CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    let hung = false;
    const timer = setTimeout(() => {
      hung = true;
      // /usr/bin/time's child is the node process: end the whole group of two
      spawn('pkill', ['-KILL', '-P', String(p.pid)]);
      p.kill('SIGKILL');
    }, timeoutMs);
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      const m = /@@peak (\d+)/.exec(out);
      const peakMb = m ? Number(m[1]) / 1024 : NaN;
      const text = out.replace(/@@peak \d+\n?/, '');
      const signalled = signal !== null || (code !== null && code > 128);
      const outcome: Outcome = hung ? 'hang' : peakMb > 1024 ? 'over 1 GB' : /\n\s+at .+:\d+/.test(text) ? 'stack trace' : signalled || ![0, 1, 2].includes(code ?? -1) ? 'crash' : 'clear';
      resolve({ name, command: args[0], outcome, seconds: (Date.now() - t0) / 1000, peakMb, firstLine: text.trim().split('\n')[0]?.slice(0, 200) ?? '', code });
    });
  });
}

/** Runs the commands two at a time (this machine's two cores). */
async function pool(jobs: (() => Promise<Run>)[], width = 2): Promise<Run[]> {
  const out: Run[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < jobs.length) out.push(await jobs[next++]());
  }));
  return out;
}

export async function fuzz(o: { datasets: number; models: number; seed?: number }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rlhf-fuzz-'));
  try {
    const jobs: (() => Promise<Run>)[] = [];
    datasetCases(o.datasets, o.seed ?? 1).forEach((c, i) => {
      const d = path.join(dir, `d${i}`);
      fs.mkdirSync(d);
      const file = c.make(d);
      jobs.push(() => runOne(c.name, ['validate', file]));
      jobs.push(() => runOne(c.name, ['stats', file]));
    });
    modelCases(o.models, o.seed ?? 2).forEach((c, i) => {
      const d = path.join(dir, `m${i}`);
      fs.mkdirSync(d);
      const model = c.make(d);
      jobs.push(() => runOne(c.name, ['logprobs', '--model', model, '--text', 'call me', '--json', '--backend', 'wasm']));
    });
    const runs = await pool(jobs);
    const counts: Record<string, Record<Outcome | 'of which refused', number>> = {};
    for (const r of runs) {
      counts[r.command] ??= { clear: 0, 'of which refused': 0, 'stack trace': 0, hang: 0, crash: 0, 'over 1 GB': 0 };
      counts[r.command][r.outcome]++;
      if (r.outcome === 'clear' && r.code !== 0) counts[r.command]['of which refused']++;
    }
    return { runs, counts, slowest: Math.max(...runs.map((r) => r.seconds)), peakMb: Math.max(...runs.map((r) => r.peakMb)) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  const n = (k: string, d: number) => Number(process.argv.find((a) => a.startsWith(`--${k}=`))?.split('=')[1] ?? d);
  void fuzz({ datasets: n('datasets', 300), models: n('models', 100) }).then((r) => {
    for (const x of r.runs.filter((x) => x.outcome !== 'clear')) console.log(`NOT CLEAR (${x.outcome}) ${x.command} ${x.name}: ${x.firstLine}`);
    console.log(JSON.stringify({ counts: r.counts, slowest_seconds: r.slowest, peak_mb: Math.round(r.peakMb) }, null, 2));
    process.exit(r.runs.every((x) => x.outcome === 'clear') ? 0 : 1);
  });
}
