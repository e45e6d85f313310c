/**
 * Starts the training worker (dist/worker.js) as a child process and turns its messages into
 * log lines, progress and a final exit code. The host never loads TensorFlow.js itself.
 */
import { fork, ChildProcess } from 'child_process';
import * as path from 'path';
import { WorkerToHost, parseWorkerMessage } from '../protocol/worker';

export interface WorkerEvents {
  onLog(line: string): void;
  onResult?(value: Record<string, unknown>): void;
  onProgress(p: Extract<WorkerToHost, { type: 'progress' }>): void;
}

export class WorkerClient {
  private child: ChildProcess | undefined;
  /** The newest complete checkpoint the running stage reported. */
  lastCheckpoint: string | undefined;

  constructor(private readonly extensionPath: string) {}

  get running(): boolean {
    return this.child !== undefined;
  }

  /** The worker's process id while it runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  run(argv: string[], cwd: string, env: Record<string, string>, ev: WorkerEvents): Promise<number> {
    if (this.child) return Promise.reject(new Error('a training run is already in progress'));
    this.cancelled = false;
    this.lastCheckpoint = undefined;
    return new Promise((resolve) => {
      const child = fork(path.join(this.extensionPath, 'dist', 'worker.js'), [], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
      this.child = child;
      let code: number | undefined;
      child.stdout?.on('data', (d) => ev.onLog(String(d).trimEnd()));
      child.stderr?.on('data', (d) => ev.onLog(String(d).trimEnd()));
      child.on('message', (raw) => {
        const m = parseWorkerMessage(raw);
        if (!m) return ev.onLog(`ignored an invalid message from the worker`);
        if (m.type === 'ready') child.send({ type: 'start', argv });
        else if (m.type === 'log') ev.onLog(m.message);
        else if (m.type === 'checkpoint') this.lastCheckpoint = m.dir;
        else if (m.type === 'result') ev.onResult?.(m.value);
        else if (m.type === 'error') ev.onLog(`error: ${m.message}`);
        else if (m.type === 'progress') ev.onProgress(m);
        else if (m.type === 'done') code = m.code;
      });
      child.on('exit', (exitCode, signal) => {
        this.child = undefined;
        if (code === undefined) ev.onLog(`the worker stopped unexpectedly (${signal ? `signal ${signal}` : `exit code ${exitCode}`}); ${this.lastCheckpoint ? `the last good checkpoint is ${this.lastCheckpoint}; resume the run from the Runs view or with rlhf resume` : 'no checkpoint was written yet'}`);
        resolve(code ?? 1);
      });
    });
  }

  /** Whether the last run was asked to stop. */
  cancelled = false;

  /** Stops the worker at once (for work with nothing to save, such as a generation no one waits for). */
  kill(): void {
    this.child?.kill();
  }

  cancel(): void {
    if (!this.child) return;
    this.cancelled = true;
    this.child.send({ type: 'cancel' });
  }
}
