/**
 * Messages between the extension host and the training worker (a child process started with
 * child_process.fork). One module for both sides; every message is validated on receipt.
 */
import { isNum, isObj, isStr } from './validate';

export type HostToWorker =
  | { type: 'start'; argv: string[] }
  | { type: 'cancel' };

export type WorkerToHost =
  | { type: 'ready'; pid: number }
  | { type: 'log'; message: string }
  | { type: 'checkpoint'; dir: string; step: number }
  | { type: 'result'; value: Record<string, unknown> }
  | { type: 'progress'; stage: string; step: number; total: number; eta_seconds: number; metrics: Record<string, number> }
  | { type: 'error'; message: string }
  | { type: 'done'; code: number };


export function parseHostMessage(v: unknown): HostToWorker | undefined {
  if (!isObj(v)) return undefined;
  if (v.type === 'start' && Array.isArray(v.argv) && v.argv.every(isStr)) return { type: 'start', argv: v.argv };
  if (v.type === 'cancel') return { type: 'cancel' };
  return undefined;
}

export function parseWorkerMessage(v: unknown): WorkerToHost | undefined {
  if (!isObj(v)) return undefined;
  switch (v.type) {
    case 'ready':
      return isNum(v.pid) ? { type: 'ready', pid: v.pid } : undefined;
    case 'log':
    case 'error':
      return isStr(v.message) ? { type: v.type, message: v.message } : undefined;
    case 'progress': {
      if (!isStr(v.stage) || !isNum(v.step) || !isNum(v.total) || !isNum(v.eta_seconds) || !isObj(v.metrics)) return undefined;
      const metrics: Record<string, number> = {};
      for (const [k, x] of Object.entries(v.metrics)) if (typeof x === 'number') metrics[k] = x;
      return { type: 'progress', stage: v.stage, step: v.step, total: v.total, eta_seconds: v.eta_seconds, metrics };
    }
    case 'result':
      return isObj(v.value) ? { type: 'result', value: v.value } : undefined;
    case 'checkpoint':
      return isStr(v.dir) && isNum(v.step) ? { type: 'checkpoint', dir: v.dir, step: v.step } : undefined;
    case 'done':
      return isNum(v.code) ? { type: 'done', code: v.code } : undefined;
    default:
      return undefined;
  }
}
