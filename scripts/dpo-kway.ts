// DPO on the demo's K-way rankings, two ways, same SFT model, data, steps and seed: the
// Plackett-Luce loss over each whole ranking, and the same rankings expanded into their C(K,2)
// pairs. Reports held-out reward accuracy on rankings (eval/rewards/accuracies) and, on the
// held-out prompts, the gold score (AFINN) ± standard error, the reward-model score and the KL to
// SFT, beside SFT itself. Needs `npm run demo` first (its SFT and reward model).
// Run: node --import tsx scripts/dpo-kway.ts [--steps N] [--beta B] [--lr LR]
import * as path from 'path';
import { initBackend } from '../src/engine/backends/backend';
import { dpo } from '../src/engine/stages/dpo';
import { evaluate } from '../src/cli/commands/pipeline';
import { RunDir } from '../src/data/run';

const arg = (k: string, d: number) => (process.argv.includes(`--${k}`) ? Number(process.argv[process.argv.indexOf(`--${k}`) + 1]) : d);
const steps = arg('steps', 60), beta = arg('beta', 0.1), lr = arg('lr', 5e-5);
const demo = path.resolve('.rlhf/demo/runs');
const sftModel = path.join(demo, 'sft', 'checkpoints', 'final');
const rmModel = path.join(demo, 'rm', 'checkpoints', 'final');
const data = path.resolve('examples/workspace/data/reviews.rm.jsonl');
const heldout = path.resolve('examples/workspace/data/reviews-heldout.ppo.jsonl');
const out = path.resolve('.rlhf/dpo-kway');

void (async () => {
  await initBackend('wasm');
  const rows: string[] = [];
  const fmt = (name: string, e: Awaited<ReturnType<typeof evaluate>>, acc?: number, secs?: number) =>
    `${name.padEnd(22)} ${e.gold_mean.toFixed(2).padStart(6)} ± ${e.gold_se.toFixed(2)}   ${e.rm_mean.toFixed(2).padStart(6)}   ${e.kl_mean !== undefined ? e.kl_mean.toFixed(2).padStart(6) : '     -'}   ${acc !== undefined ? acc.toFixed(3) : '    -'}   ${secs !== undefined ? secs.toFixed(0).padStart(4) : '   -'}`;
  rows.push(fmt('SFT', await evaluate(sftModel, undefined, rmModel, heldout, 2)));
  for (const kway of ['pl', 'pairs'] as const) {
    const t0 = Date.now();
    const r = await dpo({ data, model: sftModel, dpo: { kway, beta }, train: { steps, evalInterval: steps, lr, minLr: lr / 10 }, runsDir: out, runId: `dpo-${kway}-${Date.now()}` });
    const secs = (Date.now() - t0) / 1000;
    const acc = new RunDir(path.dirname(path.dirname(r.finalModel!))).readMetrics().at(-1)!['eval/rewards/accuracies'];
    rows.push(fmt(`DPO ${kway === 'pl' ? 'Plackett-Luce' : 'pairs'}`, await evaluate(r.finalModel!, sftModel, rmModel, heldout, 2), acc, secs));
  }
  console.log(`DPO on ${path.basename(data)}, ${steps} steps each, beta ${beta}, lr ${lr}, from the demo's SFT model`);
  console.log('model                  gold (AFINN) ± se   RM      KL to SFT   held-out reward acc   seconds');
  for (const r of rows) console.log(r);
})();
