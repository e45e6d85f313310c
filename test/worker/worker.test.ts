import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { ROOT, tmpDir } from '../helpers';
import { WorkerClient } from '../../src/host/worker-client';
import { RunDir } from '../../src/data/run';
import { defaultCorpusPath } from '../../src/engine/stages/common';
import { parseHostMessage, parseWorkerMessage } from '../../src/protocol/worker';
import { readModelDir } from '../../src/engine/checkpoint';

function setup() {
  const root = tmpDir();
  const corpus = path.join(root, 'c.txt');
  fs.writeFileSync(corpus, fs.readFileSync(defaultCorpusPath(), 'utf8').slice(0, 40_000));
  const argv = ['pretrain', '--corpus', corpus, '--layers', '1', '--heads', '2', '--embd', '16', '--block', '16', '--batch-size', '4', '--runs-dir', path.join(root, 'runs'), '--run-id', 'w'];
  return { root, argv, run: new RunDir(path.join(root, 'runs', 'w')) };
}

test('the worker process runs a stage and reports progress over IPC', async () => {
  const { argv, run } = setup();
  const client = new WorkerClient(ROOT);
  const steps: number[] = [];
  const logs: string[] = [];
  const code = await client.run([...argv, '--steps', '8'], ROOT, {}, { onLog: (l) => logs.push(l), onProgress: (p) => steps.push(p.step) });
  assert.equal(code, 0, logs.join('\n'));
  assert.deepEqual(steps, [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.ok(logs.some((l) => l.startsWith('backend: ')), 'says which backend it uses');
  assert.equal(run.read().status, 'completed');
});

test('the worker and its gradient threads run at a lower priority than the editor (nice 10)', { skip: process.platform !== 'linux' && 'reads /proc' }, async () => {
  const { argv } = setup();
  const client = new WorkerClient(ROOT);
  const nice = new Map<number, number>(); // thread id -> nice, seen while training
  let pid = 0; // the main thread's id is the process id
  const code = await client.run([...argv, '--steps', '12', '--threads', '2'], ROOT, {}, {
    onLog: () => {},
    onProgress: () => {
      pid = client.pid!;
      for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
        try {
          // stat: "pid (comm) state ..." with nice the 19th field; comm may hold spaces
          const fields = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
          nice.set(Number(tid), Number(fields[16]));
        } catch {
          // the thread ended
        }
      }
    },
  });
  assert.equal(code, 0);
  assert.equal(nice.get(pid), 10, 'the main thread');
  // threads started after the worker lowered its priority (the gradient thread among them) inherit it
  assert.ok([...nice.entries()].filter(([tid, n]) => tid !== pid && n === 10).length >= 1, `threads' nice values: ${JSON.stringify([...nice])}`);
});

test('cancel stops the worker cleanly with a checkpoint, and the run resumes', async () => {
  const { argv, run } = setup();
  const client = new WorkerClient(ROOT);
  const t0 = Date.now();
  let cancelledAt = 0;
  const code = await client.run([...argv, '--steps', '400'], ROOT, {}, {
    onLog: () => {},
    onProgress: (p) => {
      if (p.step === 3 && !cancelledAt) {
        cancelledAt = Date.now();
        client.cancel();
      }
    },
  });
  assert.equal(code, 0);
  assert.ok(Date.now() - cancelledAt < 5000, 'stops within a few seconds');
  assert.equal(run.read().status, 'cancelled');
  const ckpt = run.latestCheckpoint()!;
  assert.ok(ckpt.step >= 3 && ckpt.step < 400);
  assert.ok(Date.now() - t0 < 60_000);
  const resumed = await new WorkerClient(ROOT).run(['resume', run.dir], ROOT, {}, { onLog: () => {}, onProgress: () => {} });
  assert.equal(resumed, 0);
  assert.equal(run.read().status, 'completed');
  assert.equal(run.readMetrics().at(-1)!.step, 400);
});

test('a worker killed with SIGKILL is reported, and its run resumes from the last checkpoint', async () => {
  const { argv, run } = setup();
  const client = new WorkerClient(ROOT);
  const logs: string[] = [];
  const code = await client.run([...argv, '--steps', '400', '--checkpoint-interval', '2'], ROOT, {}, {
    onLog: (l) => logs.push(l),
    onProgress: (p) => {
      if (p.step === 5) (client as unknown as { child: { kill(s: string): void } }).child.kill('SIGKILL');
    },
  });
  assert.notEqual(code, 0);
  assert.ok(logs.some((l) => /stopped unexpectedly \(signal SIGKILL\)/.test(l)), logs.join('\n'));
  assert.equal(run.read().status, 'running', 'the run was not closed by the dead worker');
  assert.ok(run.latestCheckpoint()!.step >= 4);
  const resumed = await new WorkerClient(ROOT).run(['resume', run.dir], ROOT, {}, { onLog: () => {}, onProgress: () => {} });
  assert.equal(resumed, 0);
  assert.equal(run.read().status, 'completed');
});

test('protocol messages are validated on receipt', () => {
  assert.deepEqual(parseHostMessage({ type: 'start', argv: ['pretrain'] }), { type: 'start', argv: ['pretrain'] });
  assert.equal(parseHostMessage({ type: 'start', argv: [1] }), undefined);
  assert.equal(parseHostMessage({ type: 'rm -rf' }), undefined);
  assert.equal(parseHostMessage(null), undefined);
  assert.deepEqual(parseWorkerMessage({ type: 'progress', stage: 'sft', step: 1, total: 2, eta_seconds: 3, metrics: { loss: 1, bad: 'x' } }), { type: 'progress', stage: 'sft', step: 1, total: 2, eta_seconds: 3, metrics: { loss: 1 } });
  assert.equal(parseWorkerMessage({ type: 'progress', stage: 'sft' }), undefined);
  assert.equal(parseWorkerMessage({ type: 'done', code: 'zero' }), undefined);
});

test('SIGKILL in the middle of a checkpoint write leaves the previous checkpoint loadable and the run resumable', async () => {
  const { argv, run } = setup();
  const client = new WorkerClient(ROOT);
  const logs: string[] = [];
  let killed = false;
  const checkpoints: string[] = [];
  // each file of a checkpoint takes 1.5 s to "write": time to kill the worker inside one
  const watch = setInterval(() => {
    if (killed || !fs.existsSync(run.checkpointsDir)) return;
    const names = fs.readdirSync(run.checkpointsDir);
    const writing = names.find((n) => /^\.tmp-.*-new-step-000004$/.test(n));
    if (writing && fs.readdirSync(path.join(run.checkpointsDir, writing)).length >= 1) {
      killed = true;
      (client as unknown as { child: { kill(s: string): void } }).child.kill('SIGKILL');
    }
  }, 50);
  const code = await client.run([...argv, '--steps', '8', '--checkpoint-interval', '2'], ROOT, { RLHF_TEST_CHECKPOINT_DELAY_MS: '1500' }, {
    onLog: (l) => logs.push(l),
    onProgress: () => {},
  });
  clearInterval(watch);
  assert.ok(killed, 'the worker was killed while writing step 4');
  assert.notEqual(code, 0);
  checkpoints.push(...fs.readdirSync(run.checkpointsDir));
  assert.ok(checkpoints.some((n) => /^\.tmp-.*-new-step-000004$/.test(n)), `a half-written checkpoint is left: ${checkpoints}`);
  assert.equal(run.latestCheckpoint()!.step, 2, 'the half-written one is not taken for a checkpoint');
  assert.ok(logs.some((l) => l.includes(`the last good checkpoint is ${run.stepCheckpointDir(2)}`)), logs.join('\n'));
  const loaded = readModelDir(run.stepCheckpointDir(2));
  assert.equal(loaded.config.n_layer, 1);
  const resumed = await new WorkerClient(ROOT).run(['resume', run.dir], ROOT, {}, { onLog: () => {}, onProgress: () => {} });
  assert.equal(resumed, 0);
  assert.equal(run.read().status, 'completed');
  assert.ok(!fs.readdirSync(run.checkpointsDir).some((n) => n.startsWith('.tmp-')), 'resume removed the half-written folder');
});
