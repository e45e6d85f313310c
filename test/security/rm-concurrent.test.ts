import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { tmpDir } from '../helpers';

const WRITERS = 4;
const SECONDS = Number(process.env.RLHF_RACE_SECONDS ?? 10);

test(`${WRITERS} processes appending and undoing for ${SECONDS} s: every acknowledged record not undone is there once, byte for byte`, { timeout: (SECONDS + 60) * 1000 }, async () => {
  const dir = tmpDir();
  const file = path.join(dir, 'shared.rm.jsonl');
  // someone else's records, one of them not valid UTF-8: undo must leave their bytes alone
  const foreign = Buffer.concat([Buffer.from('{"prompt":"old","chosen":"a","rejected":"b"}\n'), Buffer.from([0x7b, 0x22, 0x78, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d, 0x0a])]);
  fs.writeFileSync(file, foreign);
  const logs = Array.from({ length: WRITERS }, (_, i) => path.join(dir, `w${i}.log`));
  const script = path.join(__dirname, 'rm-writer.ts');
  const started = Date.now();
  await Promise.all(
    logs.map(
      (log, i) =>
        new Promise<void>((resolve, reject) => {
          const p = spawn(process.execPath, ['--import', 'tsx', script, file, log, String(SECONDS * 1000), `w${i}`], { stdio: ['ignore', 'inherit', 'inherit'] });
          p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`writer ${i} exited ${code}`))));
        }),
    ),
  );
  const expected = new Map<string, number>();
  let acks = 0, undos = 0;
  for (const log of logs) {
    for (const l of fs.readFileSync(log, 'utf8').split('\n').filter(Boolean)) {
      const e = JSON.parse(l) as { ack?: string; undo?: string };
      if (e.ack !== undefined) {
        acks++;
        expected.set(e.ack, (expected.get(e.ack) ?? 0) + 1);
      } else {
        undos++;
        expected.set(e.undo!, expected.get(e.undo!)! - 1);
      }
    }
  }
  const bytes = fs.readFileSync(file);
  assert.deepEqual(bytes.subarray(0, foreign.length), foreign, "the other records' bytes are untouched");
  const lines = bytes.subarray(foreign.length).toString('utf8').split('\n');
  assert.equal(lines.pop(), '', 'the file ends with a newline');
  const found = new Map<string, number>();
  for (const l of lines) found.set(l, (found.get(l) ?? 0) + 1);
  const want = [...expected].filter(([, n]) => n > 0);
  const lost = want.filter(([l]) => !found.has(l)).length;
  const dup = [...found.values()].filter((n) => n > 1).length;
  const extra = [...found.keys()].filter((l) => !expected.get(l)).length;
  console.log(`# ${WRITERS} writers, ${((Date.now() - started) / 1000).toFixed(1)} s: ${acks} acknowledged appends, ${undos} undos, ${want.length} records expected, ${lines.length} in the file; lost ${lost}, duplicated ${dup}, undone but present ${extra}`);
  assert.ok(acks > 100 && undos > 20, 'the writers really raced');
  assert.equal(lost, 0, 'no acknowledged record lost');
  assert.equal(dup, 0, 'no record twice');
  assert.equal(extra, 0, 'no undone record left');
  assert.equal(lines.length, want.length);
  assert.deepEqual(fs.readdirSync(dir).filter((f) => !f.endsWith('.log')), ['shared.rm.jsonl'], 'no lock or temporary file left');
});
