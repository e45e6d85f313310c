import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { ROOT, tmpDir } from '../helpers';
import { ScanClient } from '../../src/host/scan-client';
import { RunDir } from '../../src/data/run';
import { hostileWorkspace } from './hostile';

const SCAN = path.join(ROOT, 'dist', 'scan-worker.js');

/** Runs `body` while measuring the longest stall of this thread's event loop. */
async function lag<T>(body: () => Promise<T>): Promise<{ value: T; maxLagMs: number }> {
  let last = performance.now(), maxLagMs = 0;
  const t = setInterval(() => {
    const now = performance.now();
    maxLagMs = Math.max(maxLagMs, now - last - 10);
    last = now;
  }, 10);
  try {
    return { value: await body(), maxLagMs };
  } finally {
    clearInterval(t);
  }
}

test('finding 2 as found: listRuns over /dev/zero, FIFO, null and numeric run.json returns the good run at once', () => {
  const ws = hostileWorkspace();
  // in a child with a time limit: today's code never returned (it read /dev/zero to 8 GB)
  const script = `const { listRuns } = require(${JSON.stringify(path.join(ROOT, 'src/data/runs-tree.ts'))}); console.log(JSON.stringify(listRuns(process.argv[1]).map((r) => r.info.id)));`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script, ws.runs], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr || `timed out: ${r.signal}`);
  assert.deepEqual(JSON.parse(r.stdout), ['good']);
});

test('the scan thread reads a hostile workspace file by file: each bad file gets one clear reason, the good ones load, the host thread never stalls', { timeout: 120_000 }, async () => {
  const ws = hostileWorkspace();
  const scan = new ScanClient(SCAN);
  try {
    const { value, maxLagMs } = await lag(async () => {
      const runs = await scan.ask({ type: 'runs', dir: ws.runs });
      const files = fs.readdirSync(ws.data).sort().map((f) => path.join(ws.data, f));
      const results: Record<string, string> = {};
      for (const f of files) {
        const r = await scan.ask({ type: 'scan', file: f, roots: [ws.root] });
        results[path.basename(f)] = r.type === 'failed' ? `failed: ${r.message}` : r.result.entry ? `${r.result.entry.records} records, ${r.result.entry.problems} problems${r.result.problems[0] ? `: ${r.result.problems[0].message}` : ''}` : `not a dataset: ${r.result.problems[0]?.message}`;
      }
      return { runs, results };
    });
    assert.equal(value.runs.type, 'runs');
    assert.deepEqual(value.runs.type === 'runs' && value.runs.runs.map((r) => r.info.id), ['good']);
    const r = value.results;
    console.log(`# scan results (host thread's longest stall ${maxLagMs.toFixed(0)} ms):\n${Object.entries(r).map(([k, v]) => `#   ${k}: ${v}`).join('\n')}`);
    assert.match(r['a-deep.rm.jsonl'], /0 records, 1 problems: nested deeper than 100 levels/);
    assert.match(r['b-deep-id.rm.jsonl'], /0 records, 1 problems: nested deeper than 100 levels/);
    assert.equal(r['c-bracket.rm.jsonl'], '1 records, 0 problems', 'over 20 MB: indexed, validated on request');
    const full = await scan.ask({ type: 'scan', file: path.join(ws.data, 'c-bracket.rm.jsonl'), roots: [ws.root], full: true });
    assert.match(full.type === 'scan' ? full.result.problems[0].message : '', /nested deeper than 100 levels/);
    assert.match(r['d-fifo.rm.jsonl'], /failed: .* is a FIFO, not a regular file; refused/);
    assert.match(r['e-zero.sft.jsonl'], /resolves outside the workspace|is a device, not a regular file; refused/);
    assert.match(r['f-outside.rm.jsonl'], /resolves outside the workspace/);
    assert.equal(r['g-good.rm.jsonl'], '1 records, 0 problems');
    assert.equal(r['z-good.rm.jsonl'], '1 records, 0 problems', 'files after the bad ones still load');
    assert.ok(maxLagMs < 250, `the host's event loop stalled ${maxLagMs} ms`);
  } finally {
    scan.dispose();
  }
});

test('a file that exhausts the scan thread memory fails alone; the next request is answered', { timeout: 60_000 }, async () => {
  const dir = tmpDir();
  const big = path.join(dir, 'big.sft.jsonl');
  // 19 MB of records with long unique ids: the duplicate-id check needs far more than an 8 MB heap
  const lines: string[] = [];
  for (let i = 0, n = 0; n < 19e6; i++) {
    lines.push(JSON.stringify({ prompt: 'p', response: 'r', id: `${'x'.repeat(400)}${i}` }));
    n += lines[lines.length - 1].length + 1;
  }
  fs.writeFileSync(big, lines.join('\n') + '\n');
  const line = JSON.stringify({ prompt: 'p', response: 'r' }) + '\n';
  const small = path.join(dir, 'small.sft.jsonl');
  fs.writeFileSync(small, line);
  const scan = new ScanClient(SCAN, { maxHeapMb: 8, timeoutMs: 30_000 });
  try {
    const a = await scan.ask({ type: 'scan', file: big, roots: [] });
    assert.equal(a.type, 'failed');
    assert.match(a.type === 'failed' ? a.message : '', /more than 8 MB|stopped/);
    const b = await scan.ask({ type: 'scan', file: small, roots: [] });
    assert.equal(b.type === 'scan' && b.result.entry?.records, 1);
  } finally {
    scan.dispose();
  }
});

test('a run that takes too long to read is stopped at the time limit, and the thread answers the next request', { timeout: 60_000 }, async () => {
  const dir = tmpDir();
  const big = path.join(dir, 'slow.sft.jsonl');
  const line = JSON.stringify({ prompt: 'p', response: 'r' }) + '\n';
  fs.writeFileSync(big, line.repeat(Math.floor(19e6 / line.length)));
  const scan = new ScanClient(SCAN, { timeoutMs: 50 });
  try {
    const a = await scan.ask({ type: 'scan', file: big, roots: [] });
    assert.match(a.type === 'failed' ? a.message : '', /took over 0.05 s; stopped/);
  } finally {
    scan.dispose();
  }
  assert.ok(new RunDir(dir)); // (the module loads in the test process too)
});
