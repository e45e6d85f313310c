/**
 * Reading the worker's log lines (no VS Code here: unit-tested): the reason of a failure, the
 * FILE:LINE it names, the run folder a stage announces, a JSON result as words.
 */
import * as fs from 'fs';
import * as path from 'path';

/** The worker's error line without its prefixes: "error: rlhf sft: 1 bad record(s)…" -> "1 bad record(s)…". */
export function reasonOf(line: string): string {
  return line.replace(/^error:\s*/, '').replace(/^rlhf \w+:\s*/, '');
}

/** The first FILE:LINE a reason names (a dataset's bad line), resolved against the workspace. */
export function fileLineOf(reason: string, cwd: string): { file: string; line: number } | undefined {
  const m = /((?:[A-Za-z]:)?[^\s:"'()]+\.(?:jsonl|json|txt|mjs|md)):(\d+)/.exec(reason);
  if (!m) return undefined;
  const file = path.resolve(cwd, m[1]);
  return fs.existsSync(file) ? { file, line: Number(m[2]) } : undefined;
}

/** The run folder a stage's log names ("run /path: …", "resuming /path from step N"). */
export function runDirOf(line: string): string | undefined {
  return /^(?:run|resuming) (\/.+?|[A-Za-z]:\\.+?)(?::\s| from step)/.exec(line)?.[1];
}

/** A worker's JSON result line as words for the log ("completed at step 80; model in …; loss 0.474"); other lines as they are. */
export function readableLine(line: string): string {
  if (!line.startsWith('{"type":"result"')) return line;
  try {
    const v = JSON.parse(line) as Record<string, unknown>;
    const parts: string[] = [];
    if (typeof v.status === 'string') parts.push(`${v.status}${typeof v.step === 'number' ? ` at step ${v.step}` : ''}`);
    if (typeof v.final_model === 'string') parts.push(`model in ${v.final_model}`);
    const m = (v.metrics ?? {}) as Record<string, unknown>;
    const shown = Object.entries(m).filter(([k, x]) => typeof x === 'number' && !['step', 'time'].includes(k)).slice(0, 6);
    if (shown.length) parts.push(shown.map(([k, x]) => `${k} ${Number((x as number).toPrecision(4))}`).join(', '));
    return parts.length ? `result: ${parts.join('; ')}` : line;
  } catch {
    return line;
  }
}

/**
 * Dawn's own notes on stderr when WebGPU starts on some adapters ("Warning: maxDynamic... artificially
 * reduced ..."): about Dawn's internals, nothing a user can act on; kept at debug level.
 */
export function isDawnNote(line: string): boolean {
  return /^Warning: max\w+ artificially reduced from \d+ to \d+/.test(line);
}
