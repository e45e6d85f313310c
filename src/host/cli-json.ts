/**
 * Runs one `rlhf … --json` command of the bundled CLI in a child process: each JSON line of its
 * stdout goes to `onMessage`, stderr to `onLog`; resolves with the exit code and the one-line error
 * it reported (without its "rlhf <command>: " prefix).
 */
import * as path from 'path';
import { fork } from 'child_process';

export interface CliMessage {
  type?: string;
  message?: string;
  [k: string]: unknown;
}

export function runCliJson(extensionPath: string, args: string[], cwd: string, onMessage: (m: CliMessage) => void = () => {}, onLog: (line: string) => void = () => {}): Promise<{ code: number; error?: string }> {
  return new Promise((resolve) => {
    // --json right after the command name: before any `--` that ends its options
    const child = fork(path.join(extensionPath, 'dist', 'cli.js'), [args[0], '--json', ...args.slice(1)], { cwd, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    let buf = '', error: string | undefined;
    child.stdout!.on('data', (d) => {
      buf += d;
      for (let nl; (nl = buf.indexOf('\n')) >= 0; buf = buf.slice(nl + 1)) {
        let m: CliMessage;
        try {
          m = JSON.parse(buf.slice(0, nl));
        } catch {
          continue; // a log line
        }
        if (m.type === 'error' && typeof m.message === 'string') error = m.message.replace(/^rlhf [\w-]+: /, '');
        onMessage(m);
      }
    });
    child.stderr!.on('data', (d) => onLog(String(d).trimEnd()));
    child.on('exit', (code) => resolve({ code: code ?? 1, error }));
  });
}
