// Runs every test file under test/ with Node's own test runner (TypeScript through tsx):
// the spec reporter on the terminal, TAP into a file from which the closing count is printed.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

function find(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? find(p) : e.name.endsWith('.test.ts') ? [p] : [];
  });
}
// screenshots of failed end-to-end tests are from this run only (each test file is its own process)
const artifacts = 'test-artifacts';
for (const f of fs.existsSync(artifacts) ? fs.readdirSync(artifacts) : []) if (f.startsWith('failed-')) fs.rmSync(path.join(artifacts, f));
const only = process.argv.slice(2);
const files = only.length ? only : find('test').sort();
const tap = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rlhf-tap-')), 'results.tap');
// measured speeds (cost estimates) go to a folder of this run, not the user's cache
process.env.RLHF_CACHE_DIR ||= fs.mkdtempSync(path.join(os.tmpdir(), 'rlhf-cache-'));
const r = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=tap', `--test-reporter-destination=${tap}`, ...files],
  { stdio: 'inherit' },
);
const text = fs.existsSync(tap) ? fs.readFileSync(tap, 'utf8') : '';
const count = (k) => Number((text.match(new RegExp(`^# ${k} (\\d+)$`, 'm')) ?? [])[1] ?? 0);
console.log(`\n${count('pass')} passed, ${count('fail')} failed, ${count('skipped')} skipped`);
process.exit(r.status ?? 1);
