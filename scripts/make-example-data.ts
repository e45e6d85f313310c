/**
 * Writes the example workspace's datasets (committed; run again with `npx tsx
 * scripts/make-example-data.ts` to regenerate them identically). The task: short reviews of
 * places in a whaling port. Demonstrations mix praise and complaint, so the SFT model is
 * neutral on average and a preference for positive answers has room to show.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Rng } from '../src/engine/rng';

const rng = new Rng(20261129);
const pick = <T>(a: T[]): T => a[rng.int(a.length)];

const subjects = [
  'the harbor inn', 'the whaling museum', 'the chowder house', 'the ferry', 'the lighthouse tour', 'the rope walk',
  'the old chapel', 'the fish market', 'the spouter inn', 'the ship yard', 'the sail loft', 'the bakery',
  'the tavern', 'the boarding house', 'the harbor cruise', 'the island beach', 'the captain house', 'the town library',
  'the tea room', 'the boat rental', 'the oyster bar', 'the seaside hotel', 'the market square', 'the wharf cafe',
  'the maritime school', 'the candle shop', 'the walking tour', 'the harbor park', 'the night market', 'the old mill',
];
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

function main() {
  const out = path.join(__dirname, '..', 'examples', 'workspace', 'data');
  fs.mkdirSync(out, { recursive: true });
  const sft: string[] = [];
  for (let i = 0; i < 800; i++) {
    const s = pick(subjects);
    sft.push(JSON.stringify({ id: `sft-${i}`, prompt: promptFor(s), response: review(s, pick([0.1, 0.5, 0.9])), category: 'generation', source: 'template' }));
  }
  fs.writeFileSync(path.join(out, 'reviews.sft.jsonl'), sft.join('\n') + '\n');
  process.stdout.write(`wrote ${sft.length} demonstrations to ${out}\n`);
}

main();
