/** Dataset commands: validate, stats, convert. Pure data work: no TensorFlow.js backend starts. */
import * as fs from 'fs';
import { OptSpecs, ParsedOpts, UsageError } from '../args';
import { Reporter } from '../progress';
import { formatProblem } from '../../data/jsonl';
import { STAGES, Stage } from '../../data/reader';
import { readDatasetParallel } from '../../data/validate-parallel';
import { distFile } from '../../engine/paths';
import { datasetStats } from '../../data/stats';
import { CONVERSIONS, Conversion, convertFile } from '../../data/convert';
import { agreement } from '../../data/agreement';
import { readRankingFile } from '../../data/ranking-session';
import { Gpt2Tokenizer } from '../../engine/tokenizer';

const HELP = { help: { type: 'boolean' as const, help: 'show this help' }, json: { type: 'boolean' as const, help: 'machine-readable output' } };

export const VALIDATE_OPTS: OptSpecs = {
  stage: { type: 'string', help: 'pretrain, sft, rm or ppo (default: from the name, *.sft.jsonl etc., or sniffed)' },
  'max-line-bytes': { type: 'int', help: 'longest line accepted', default: 64 << 20 },
  ...HELP,
};

export const STATS_OPTS: OptSpecs = {
  eval: { type: 'string', help: 'an eval file: report prompts that leak between it and FILE' },
  tokenizer: { type: 'string', help: 'count lengths in gpt2 tokens or char(acters)', default: 'gpt2' },
  ...HELP,
};

export const CONVERT_OPTS: OptSpecs = {
  to: { type: 'string', help: `${CONVERSIONS.join(', ')}` },
  out: { type: 'string', help: 'the new file to write' },
  force: { type: 'boolean', help: 'replace --out if it exists' },
  ...HELP,
};

function stageOpt(o: ParsedOpts): Stage | undefined {
  if (o.stage === undefined) return undefined;
  if (!STAGES.includes(o.stage as Stage)) throw new UsageError(`--stage must be one of ${STAGES.join(', ')}`);
  return o.stage as Stage;
}

/** Exit code 0 when every file is valid, 1 otherwise; one line per problem, then a summary. */
export async function validateCommand(o: ParsedOpts, files: string[], _r: Reporter): Promise<number> {
  if (!files.length) throw new UsageError('rlhf validate needs at least one FILE');
  const stage = stageOpt(o);
  const scanScript = distFile('scan-worker.js'); // large files are checked on every core
  let records = 0, problems = 0;
  const out = (p: { file: string; line: number; message: string }) =>
    process.stdout.write(o.json ? JSON.stringify(p) + '\n' : formatProblem(p) + '\n');
  for (const file of files) {
    if (!fs.existsSync(file)) {
      problems++;
      out({ file, line: 0, message: 'file not found' });
      continue;
    }
    // each file on its own: one that cannot be read (a FIFO, a device) is one problem, and the next is checked
    try {
      const s = await readDatasetParallel(file, { stage, maxLineBytes: o['max-line-bytes'] as number, onProblem: out, script: scanScript ?? '', threads: scanScript ? undefined : 1 });
      records += s.records;
      problems += s.problems;
    } catch (e) {
      problems++;
      out({ file, line: 0, message: (e as Error).message.replace(`${file}: `, '').replace(`${file} `, '') });
    }
  }
  const summary = `${files.length} file(s), ${records} valid record(s), ${problems} problem(s)`;
  if (o.json) process.stdout.write(JSON.stringify({ type: 'summary', files: files.length, records, problems }) + '\n');
  else process.stderr.write(summary + '\n');
  return problems ? 1 : 0;
}

export async function statsCommand(o: ParsedOpts, files: string[]): Promise<number> {
  if (files.length !== 1) throw new UsageError('rlhf stats takes one FILE (and --eval FILE for leaks)');
  if (!fs.existsSync(files[0])) throw new Error(`${files[0]}: file not found`);
  const tok = o.tokenizer === 'gpt2' ? new Gpt2Tokenizer() : undefined;
  if (o.tokenizer !== 'gpt2' && o.tokenizer !== 'char') throw new UsageError('--tokenizer must be gpt2 or char');
  const s = datasetStats(files[0], { countTokens: tok ? (x) => tok.encode(x).length : undefined, evalFile: o.eval as string | undefined });
  if (o.json) {
    process.stdout.write(JSON.stringify(s) + '\n');
    return 0;
  }
  const d = (x?: { mean: number; p50: number; p90: number; max: number }) => (x ? `mean ${x.mean.toFixed(1)}, median ${x.p50}, p90 ${x.p90}, max ${x.max}` : '-');
  const pct = (m?: Record<string, number>) => (m ? Object.entries(m).map(([k, v]) => `${k} ${(100 * v).toFixed(1)}%`).join(', ') : '-');
  const lines = [
    `${s.file}: ${s.stage ?? 'unknown stage'}, ${s.records} records, ${s.problems} problems, ${(s.bytes / 1e6).toFixed(2)} MB`,
    `prompt length (${o.tokenizer} tokens): ${d(s.prompt_tokens)}`,
    `response length (${o.tokenizer} tokens): ${d(s.response_tokens)}`,
    ...(s.k ? [`K: ${Object.entries(s.k).map(([k, n]) => `${k}: ${n}`).join(', ')}; tie rate ${(100 * (s.tie_rate ?? 0)).toFixed(1)}% of pairs`] : []),
    `categories: ${pct(s.categories)}`,
    ...(s.annotators ? [`annotators: ${Object.entries(s.annotators).map(([a, n]) => `${a} ${n}`).join(', ')}`] : []),
    ...(s.leaks ? [`prompts also in ${o.eval}: ${s.leaks.count}${s.leaks.examples.length ? ` (e.g. ${JSON.stringify(s.leaks.examples[0])})` : ''}`] : []),
  ];
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}

export async function convertCommand(o: ParsedOpts, files: string[]): Promise<number> {
  if (files.length !== 1) throw new UsageError('rlhf convert takes one input FILE');
  if (!CONVERSIONS.includes(o.to as Conversion)) throw new UsageError(`--to must be one of ${CONVERSIONS.join(', ')}`);
  if (!o.out) throw new UsageError('rlhf convert needs --out FILE (a new file; the input is never changed)');
  if (!fs.existsSync(files[0])) throw new Error(`${files[0]}: file not found`);
  const r = convertFile(o.to as Conversion, files[0], o.out as string, { force: Boolean(o.force) });
  for (const p of r.problems) process.stderr.write(formatProblem(p) + '\n');
  const msg = `${r.read} record(s) read, ${r.written} written to ${r.output}, ${r.problems.length} problem(s)`;
  if (o.json) process.stdout.write(JSON.stringify({ type: 'result', read: r.read, written: r.written, output: r.output, problems: r.problems.length }) + '\n');
  else process.stderr.write(msg + '\n');
  return r.problems.length ? 1 : 0;
}

export const AGREEMENT_OPTS: OptSpecs = { ...HELP };

/** Inter-annotator agreement of an RM file's rankings (prompts ranked by several annotators). */
export async function agreementCommand(o: ParsedOpts, files: string[]): Promise<number> {
  if (files.length !== 1) throw new UsageError('rlhf agreement takes one RM FILE');
  if (!fs.existsSync(files[0])) throw new Error(`${files[0]}: file not found`);
  const a = agreement(readRankingFile(files[0]).rankings);
  if (o.json) process.stdout.write(JSON.stringify(a) + '\n');
  else {
    process.stdout.write(
      [
        `${a.items} item(s) ranked by two or more of ${a.annotators.length} annotator(s)`,
        `pairwise agreement: ${(100 * a.pairwise_agreement).toFixed(1)}% (InstructGPT's labelers: about 73%)`,
        `Krippendorff's alpha (ordinal): ${a.krippendorff_alpha_ordinal.toFixed(3)}`,
        ...a.kendall_tau_b.map((t) => `Kendall's tau-b ${t.a} vs ${t.b}: ${t.tau_b.toFixed(3)} over ${t.items} item(s)`),
      ].join('\n') + '\n',
    );
  }
  return 0;
}
