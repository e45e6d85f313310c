/**
 * The training worker: a child process forked by the extension host. It runs the same commands
 * as the `rlhf` CLI and reports over IPC with the messages of src/protocol/worker.ts.
 */
import * as os from 'os';
import { runCommand } from '../cli/main';
import { requestStop } from '../cli/commands/shared';
import { Reporter } from '../cli/progress';
import { WorkerToHost, parseHostMessage } from '../protocol/worker';

/**
 * Training takes every core it is given; the editor must stay responsive beside it. The worker
 * lowers its own priority (nice 10) before it starts any thread, so its gradient threads inherit
 * it: it still gets whatever the editor leaves idle, and the editor's processes come first.
 */
export const WORKER_NICE = 10;
try {
  os.setPriority(WORKER_NICE);
} catch {
  // not permitted here: the worker runs at the editor's priority
}

function send(m: WorkerToHost): void {
  process.send?.(m);
}

const reporter: Reporter = {
  json: true,
  log: (message) => send({ type: 'log', message }),
  checkpoint: (dir, step) => send({ type: 'checkpoint', dir, step }),
  result: (value) => send({ type: 'result', value }),
  progress: (p) => send({ type: 'progress', stage: p.stage, step: p.step, total: p.totalSteps, eta_seconds: p.etaSeconds, metrics: p.metrics }),
};

let busy = false;
process.on('message', async (raw) => {
  const m = parseHostMessage(raw);
  if (!m) {
    send({ type: 'error', message: `worker: ignored an invalid message ${JSON.stringify(raw).slice(0, 200)}` });
    return;
  }
  if (m.type === 'cancel') {
    requestStop();
    return;
  }
  if (busy) {
    send({ type: 'error', message: 'worker: a command is already running' });
    return;
  }
  busy = true;
  const code = await runCommand(m.argv, () => reporter, (message) => send({ type: 'error', message }));
  send({ type: 'done', code });
  busy = false;
  process.disconnect?.();
});

process.on('disconnect', () => requestStop());
send({ type: 'ready', pid: process.pid });
