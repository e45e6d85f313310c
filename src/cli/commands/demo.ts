import { OptSpecs, ParsedOpts } from '../args';
import { Reporter } from '../progress';
export const DEMO_OPTS: OptSpecs = {};
export async function demoCommand(_o: ParsedOpts, _r: Reporter) {}
