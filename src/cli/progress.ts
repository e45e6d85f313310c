/** Progress for long work: one updating line on a terminal, JSON lines with --json, plain lines otherwise. */
import type { Progress } from '../engine/train/trainer';

export interface Reporter {
  progress(p: Progress): void;
  log(line: string): void;
  checkpoint?(dir: string, step: number): void;
  /** A command's result, for callers that are not a terminal (the worker sends it to the host). */
  result?(value: Record<string, unknown>): void;
  json: boolean;
}

function eta(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.round(s)}s`;
}

export function makeReporter(json: boolean, out: NodeJS.WriteStream = process.stderr): Reporter {
  const tty = !json && out.isTTY;
  let open = false;
  return {
    json,
    progress(p) {
      if (json) {
        process.stdout.write(JSON.stringify({ type: 'progress', stage: p.stage, step: p.step, total: p.totalSteps, eta_seconds: Math.round(p.etaSeconds), ...p.metrics }) + '\n');
        return;
      }
      const m = p.metrics;
      const ev = (m['eval/loss'] !== undefined ? ` eval ${m['eval/loss'].toFixed(4)}` : '') + (m['eval/accuracy'] !== undefined ? ` eval acc ${m['eval/accuracy'].toFixed(3)}` : '');
      const acc = m.accuracy !== undefined ? ` acc ${m.accuracy.toFixed(3)}` : '';
      const body = m.loss !== undefined
        ? `loss ${m.loss.toFixed(4)}${acc}${ev} lr ${m.learning_rate.toExponential(2)}`
        : `score ${m['objective/scores'].toFixed(3)} kl ${m['objective/kl'].toFixed(3)} beta ${m['objective/kl_coef'].toFixed(3)}${m['objective/gold'] !== undefined ? ` gold ${m['objective/gold'].toFixed(2)}` : ''} ratio ${m['val/ratio'].toFixed(3)}`;
      const line = `${p.stage} step ${p.step}/${p.totalSteps} ${body} ${Math.round(m.tokens_per_second)} tok/s eta ${eta(p.etaSeconds)}`;
      if (tty) {
        out.write(`\r\x1b[2K${line}`);
        open = true;
        if (p.step === p.totalSteps) {
          out.write('\n');
          open = false;
        }
      } else if (p.step === 1 || p.step === p.totalSteps || p.step % 10 === 0 || ev || p.stage === 'ppo') out.write(line + '\n');
    },
    log(line) {
      if (json) {
        process.stdout.write(JSON.stringify({ type: 'log', message: line }) + '\n');
        return;
      }
      if (open) {
        out.write('\n');
        open = false;
      }
      out.write(line + '\n');
    },
  };
}
