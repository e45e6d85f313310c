/**
 * The host's side of the scan thread (src/data/scan-worker.ts): one request at a time, each with
 * a time limit; the thread has a memory limit. A request that breaks either fails alone, the thread
 * is started again, and the host's own thread stays free whatever the workspace holds.
 */
import * as path from 'path';
import { Worker } from 'worker_threads';
import { ScanReply, ScanRequest, parseScanReply } from '../protocol/scan';

type Pending = { req: ScanRequest; resolve: (r: ScanReply) => void; timer?: NodeJS.Timeout };

/** Requests without the id, which the client assigns. */
type Ask = ScanRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

export class ScanClient {
  private worker: Worker | undefined;
  private readonly queue: Pending[] = [];
  private current: Pending | undefined;
  private nextId = 1;

  constructor(
    private readonly script: string,
    private readonly o: { timeoutMs?: number; maxHeapMb?: number } = {},
  ) {}

  static forExtension(extensionPath: string): ScanClient {
    return new ScanClient(path.join(extensionPath, 'dist', 'scan-worker.js'));
  }

  /** Sends a request; resolves with the reply, or a `failed` reply naming why (time, memory, crash). */
  ask<T extends Ask['type']>(req: Extract<Ask, { type: T }>): Promise<Extract<ScanReply, { type: T | 'failed' }>> {
    return new Promise((resolve) => {
      this.queue.push({ req: { ...req, id: this.nextId++ } as ScanRequest, resolve: resolve as (r: ScanReply) => void });
      this.pump();
    });
  }

  private start(): Worker {
    const w = new Worker(this.script, { resourceLimits: { maxOldGenerationSizeMb: this.o.maxHeapMb ?? 768, maxYoungGenerationSizeMb: 64 } });
    w.unref();
    w.on('message', (raw) => {
      const r = parseScanReply(raw);
      const cur = this.current;
      if (!r || !cur || r.id !== cur.req.id) return;
      this.finish(r);
    });
    w.on('error', (e) => this.crashed(w, (e as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY' ? `reading it needed more than ${this.o.maxHeapMb ?? 768} MB; not read` : `the scan thread failed (${e.message})`));
    w.on('exit', () => this.crashed(w, 'the scan thread stopped'));
    return w;
  }

  private crashed(w: Worker, why: string): void {
    if (this.worker !== w) return;
    this.worker = undefined;
    if (this.current) this.finish({ type: 'failed', id: this.current.req.id, message: why });
  }

  private finish(r: ScanReply): void {
    const cur = this.current!;
    clearTimeout(cur.timer);
    this.current = undefined;
    cur.resolve(r);
    this.pump();
  }

  private pump(): void {
    if (this.current || !this.queue.length) return;
    const cur = (this.current = this.queue.shift()!);
    const w = (this.worker ??= this.start());
    const ms = this.o.timeoutMs ?? 60_000;
    cur.timer = setTimeout(() => {
      // a file that takes this long is stopped: the thread is ended and started again for the next one
      this.worker = undefined;
      void w.terminate();
      this.finish({ type: 'failed', id: cur.req.id, message: `reading it took over ${ms / 1000} s; stopped` });
    }, ms);
    w.postMessage(cur.req);
  }

  dispose(): void {
    for (const p of this.queue.splice(0)) p.resolve({ type: 'failed', id: p.req.id, message: 'closed' });
    const w = this.worker;
    this.worker = undefined;
    void w?.terminate();
  }
}
