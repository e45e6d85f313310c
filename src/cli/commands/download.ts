/** rlhf download MODEL_ID: a model from the Hugging Face Hub into the standard cache, resumable. */
import { OptSpecs, ParsedOpts, UsageError } from '../args';
import { Reporter } from '../progress';
import { DownloadProgress, downloadModel } from '../../engine/hub';
import { formatBytes } from '../../data/bytes';

export const DOWNLOAD_OPTS: OptSpecs = {
  revision: { type: 'string', help: 'branch, tag or commit', default: 'main' },
  json: { type: 'boolean', help: 'progress and result as JSON lines on stdout' },
};

const mib = formatBytes;
const secs = (s: number) => (!Number.isFinite(s) ? '?' : s >= 60 ? `${Math.floor(s / 60)} min ${Math.round(s % 60)} s` : `${Math.round(s)} s`);

export async function downloadCommand(o: ParsedOpts, positional: string[], r: Reporter) {
  const id = positional[0];
  if (!id) throw new UsageError('rlhf download needs a model id: rlhf download HuggingFaceTB/SmolLM2-135M-Instruct');
  const abort = new AbortController();
  const stop = () => abort.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // the worker's cancel arrives as a message
  const onMessage = (m: unknown) => (m as { type?: string })?.type === 'cancel' && abort.abort();
  process.on('message', onMessage);
  const tty = !o.json && process.stderr.isTTY;
  let lastLine = 0;
  const onProgress = (p: DownloadProgress) => {
    if (o.json) {
      process.stdout.write(JSON.stringify({ type: 'download', file: p.file, done: p.done, total: p.total, bytes_per_second: Math.round(p.bytesPerSecond), eta_seconds: Number.isFinite(p.etaSeconds) ? Math.round(p.etaSeconds) : null }) + '\n');
      return;
    }
    const line = `${id} ${p.file} ${mib(p.done)} of ${mib(p.total)} ${mib(p.bytesPerSecond)}/s ETA ${secs(p.etaSeconds)}`;
    if (tty) process.stderr.write(`\r\x1b[2K${line}`);
    else if (performance.now() - lastLine > 2000) {
      lastLine = performance.now();
      process.stderr.write(line + '\n');
    }
  };
  try {
    const dir = await downloadModel(id, { revision: o.revision as string, onProgress, signal: abort.signal });
    if (tty) process.stderr.write('\n');
    r.result?.({ model: id, dir });
    if (o.json) process.stdout.write(JSON.stringify({ type: 'result', model: id, dir }) + '\n');
    else r.log(`${id}: ${dir}`);
    return { dir };
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    process.off('message', onMessage);
  }
}
