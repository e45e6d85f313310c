// Installs what the end-to-end tests need, once, into ~/.cache/rlhf-e2e (or $RLHF_E2E_CACHE):
// Debian's chromium, ripgrep and libkrb5-dev, then code-server 4.100.3 (VS Code 1.100.3 on
// Node 20) from npm (playwright-core, which drives chromium, is a devDependency). code-server's own install scripts download things,
// so they are skipped and its native parts are built here instead; see the extension-host issue.
import { execSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export const CACHE = process.env.RLHF_E2E_CACHE ?? path.join(os.homedir(), '.cache', 'rlhf-e2e');
const MARKER = path.join(CACHE, '.ready-4.100.3');

function run(cmd, cwd, env = {}) {
  execSync(cmd, { cwd, stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, npm_config_yes: 'true', ...env } });
}

export function ensureE2E() {
  if (fs.existsSync(MARKER)) return CACHE;
  const missing = ['/usr/bin/chromium', '/usr/bin/rg'].filter((f) => !fs.existsSync(f));
  if (missing.length || !fs.existsSync('/usr/include/krb5.h')) {
    run('apt-get update -qq', '/');
    run('DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium ripgrep libkrb5-dev', '/');
  }
  fs.mkdirSync(CACHE, { recursive: true });
  fs.writeFileSync(path.join(CACHE, 'package.json'), JSON.stringify({ name: 'rlhf-e2e', private: true }));
  run('npm install --ignore-scripts --no-audit --no-fund code-server@4.100.3', CACHE);
  run('npm rebuild argon2', CACHE);
  const vscode = path.join(CACHE, 'node_modules', 'code-server', 'lib', 'vscode');
  run('npm install --ignore-scripts --omit=dev --no-audit --no-fund', vscode);
  const rg = path.join(vscode, 'node_modules', '@vscode', 'ripgrep', 'bin');
  fs.mkdirSync(rg, { recursive: true });
  if (!fs.existsSync(path.join(rg, 'rg'))) fs.symlinkSync('/usr/bin/rg', path.join(rg, 'rg'));
  run('npm rebuild', vscode);
  if (!fs.existsSync(path.join(vscode, 'node_modules.asar'))) fs.symlinkSync('node_modules', path.join(vscode, 'node_modules.asar'));
  run('npm install --ignore-scripts --omit=dev --no-audit --no-fund', path.join(vscode, 'extensions'));
  fs.writeFileSync(MARKER, new Date().toISOString());
  return CACHE;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  ensureE2E();
  console.log(`e2e tools ready in ${CACHE}`);
}
