#!/usr/bin/env node
/** Entry of the `rlhf` command line bundle (dist/cli.js). */
import { main } from './main';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`rlhf: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);
