/**
 * Writes the example workspace's datasets (committed; run again with `npx tsx
 * scripts/make-example-data.ts` to regenerate them identically). The task: short reviews of
 * places in a whaling port. Demonstrations mix praise and complaint, so the SFT model is
 * neutral on average and a preference for positive answers has room to show.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Rng } from '../src/engine/rng';
import { labelRecord } from '../src/engine/labeler/labeler';

const rng = new Rng(20261129);
const pick = <T>(a: T[]): T => a[rng.int(a.length)];

const subjects = [
  'the harbor inn', 'the whaling museum', 'the chowder house', 'the ferry', 'the lighthouse tour', 'the rope walk',
  'the old chapel', 'the fish market', 'the spouter inn', 'the ship yard', 'the sail loft', 'the bakery',
  'the tavern', 'the boarding house', 'the harbor cruise', 'the island beach', 'the captain house', 'the town library',
  'the tea room', 'the boat rental', 'the oyster bar', 'the seaside hotel', 'the market square', 'the wharf cafe',
  'the maritime school', 'the candle shop', 'the walking tour', 'the harbor park', 'the night market', 'the old mill',
];
// The last five places appear in no training file: the pipeline evaluates on them.
const trainSubjects = subjects.slice(0, 25);
const heldOutSubjects = subjects.slice(25);
const aspects = ['staff', 'food', 'room', 'view', 'price', 'music', 'service', 'coffee', 'guide', 'bed', 'water', 'crowd'];
const good = ['good', 'great', 'wonderful', 'lovely', 'excellent', 'nice', 'beautiful', 'perfect', 'fun', 'fresh', 'friendly', 'clean'];
const bad = ['bad', 'terrible', 'awful', 'dirty', 'rude', 'boring', 'poor', 'horrible', 'ugly', 'dull', 'noisy', 'sad'];
const prompts = ['Write a review of {s}.', 'What did you think of {s}?', 'Describe your visit to {s}.', 'Tell me about {s}.'];

function cap(s: string) {
  return s[0].toUpperCase() + s.slice(1);
}

/** A review whose sentences lean positive with probability `p`. */
function review(subject: string, p: number): string {
  const adj = () => (rng.next() < p ? pick(good) : pick(bad));
  const [a1, a2] = [pick(aspects), pick(aspects)];
  const forms = [
    () => `${cap(subject)} was ${adj()}. The ${a1} was ${adj()}.`,
    () => `The ${a1} was ${adj()}, the ${a2} ${adj()}.`,
    () => `A ${adj()} place. The ${a1} was ${adj()}.`,
  ];
  return pick(forms)();
}

export function promptFor(subject: string): string {
  return pick(prompts).replace('{s}', subject);
}

function write(out: string, name: string, rows: unknown[]) {
  fs.writeFileSync(path.join(out, name), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  process.stdout.write(`wrote ${rows.length} records to ${name}\n`);
}

function main() {
  const out = path.join(__dirname, '..', 'examples', 'workspace', 'data');
  fs.mkdirSync(out, { recursive: true });
  const created = '2026-11-29T00:00:00.000Z';
  // SFT: demonstrations that praise, complain or do both, so the SFT model is neutral on average
  write(out, 'reviews.sft.jsonl', Array.from({ length: 800 }, (_, i) => {
    const s = pick(trainSubjects);
    return { id: `sft-${i}`, prompt: promptFor(s), response: review(s, pick([0.1, 0.5, 0.9])), category: 'generation', source: 'template' };
  }));
  // RM: K = 4 candidate reviews per prompt, ranked by the simulated labeler (AFINN + noise)
  write(out, 'reviews.rm.jsonl', Array.from({ length: 600 }, (_, i) => {
    const s = pick(trainSubjects);
    const responses = Array.from({ length: 4 }, () => review(s, pick([0.1, 0.3, 0.5, 0.7, 0.9])));
    return { id: `rm-${i}`, ...labelRecord(promptFor(s), responses, rng, undefined, { created_at: created, model: 'template' }) };
  }));
  // PPO: prompts only; the held-out file uses places no training file mentions
  write(out, 'reviews.ppo.jsonl', Array.from({ length: 400 }, (_, i) => ({ id: `ppo-${i}`, prompt: promptFor(pick(trainSubjects)), category: 'generation' })));
  write(out, 'reviews-heldout.ppo.jsonl', Array.from({ length: 60 }, (_, i) => ({ id: `heldout-${i}`, prompt: promptFor(heldOutSubjects[i % heldOutSubjects.length]), category: 'generation' })));
}

main();
