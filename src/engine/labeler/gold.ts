/**
 * The "gold" preference of the demo task: how positive a response is, by the AFINN-165 lexicon
 * that the `sentiment` package ships (the sum of its words' valences, -5..+5 each). It stands in
 * for what a person would prefer; the reward model never sees it, only rankings made from it.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const Sentiment = require('sentiment') as new () => { analyze(text: string): { score: number } };

let analyzer: { analyze(text: string): { score: number } } | undefined;

export function goldScore(response: string): number {
  analyzer ??= new Sentiment();
  return analyzer.analyze(response).score;
}
