/** How the Samples table orders its rows (no DOM here: tested in Node). */
import { SampleNumber, SampleRow } from '../../src/data/samples';

export type SortKey = 'step' | 'prompt' | 'response' | SampleNumber;

export function compareRows(a: SampleRow, b: SampleRow, key: SortKey, dir: 1 | -1): number {
  const x = a[key], y = b[key];
  // missing values sort last whichever the direction
  const missX = x === undefined || x === null, missY = y === undefined || y === null;
  if (missX || missY) return missX === missY ? a.step - b.step : missX ? 1 : -1;
  const c = typeof x === 'string' ? x.localeCompare(y as string) : (x as number) - (y as number);
  return c * dir || a.step - b.step;
}
