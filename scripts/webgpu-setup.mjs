// Gives Dawn (the `webgpu` npm package) a Vulkan adapter on a machine without a GPU: Mesa's software
// Vulkan driver (llvmpipe, "lavapipe"). Debian bookworm's mesa-vulkan-drivers (22.3) lacks a feature
// Dawn needs; the one in bookworm-backports (25.x) works. The backports suite is added by reusing the
// URIs of the machine's own Debian sources (no host name is written here), and only when no Vulkan
// driver is installed. Needs root and apt; elsewhere it does nothing and says why.
import { execSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

const ICD_DIRS = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d'];
const BACKPORTS_FILE = '/etc/apt/sources.list.d/rlhf-bookworm-backports.sources';

export function vulkanDrivers() {
  return ICD_DIRS.flatMap((d) => (fs.existsSync(d) ? fs.readdirSync(d).filter((f) => f.endsWith('.json')) : []));
}

function run(cmd) {
  execSync(cmd, { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

/** The URIs of the main Debian suite in the machine's own sources (deb822 or one-line format). */
function debianUris() {
  const uris = new Set();
  const files = ['/etc/apt/sources.list', ...(fs.existsSync('/etc/apt/sources.list.d') ? fs.readdirSync('/etc/apt/sources.list.d').map((f) => path.join('/etc/apt/sources.list.d', f)) : [])];
  for (const f of files) {
    if (!/\.(sources|list)$/.test(f) || f === BACKPORTS_FILE || !fs.existsSync(f)) continue;
    const text = fs.readFileSync(f, 'utf8');
    if (f.endsWith('.sources')) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const field = (k) => (stanza.match(new RegExp(`^${k}:\\s*(.+)$`, 'mi')) ?? [])[1]?.trim();
        if (/^deb\b/.test(field('Types') ?? '') && (field('Suites') ?? '').split(/\s+/).includes('bookworm')) for (const u of (field('URIs') ?? '').split(/\s+/)) if (u) uris.add(u);
      }
    } else {
      for (const m of text.matchAll(/^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s/gm)) uris.add(m[1]);
    }
  }
  return [...uris];
}

/** Installs Mesa's Vulkan drivers from bookworm-backports when no Vulkan driver is present. */
export function ensureVulkan({ quiet = false } = {}) {
  const say = (s) => quiet || console.error(s);
  if (vulkanDrivers().length) return { installed: false, drivers: vulkanDrivers() };
  if (process.platform !== 'linux' || process.getuid?.() !== 0 || !fs.existsSync('/usr/bin/apt-get')) {
    say('webgpu-setup: no Vulkan driver, and this is not a Debian machine where I am root; install your GPU\'s Vulkan driver (or Mesa\'s)');
    return { installed: false, drivers: [] };
  }
  const release = fs.existsSync('/etc/os-release') ? fs.readFileSync('/etc/os-release', 'utf8') : '';
  if (!/VERSION_CODENAME=bookworm/.test(release)) {
    run('apt-get update -qq');
    run('apt-get install -y -qq mesa-vulkan-drivers');
    return { installed: true, drivers: vulkanDrivers() };
  }
  const uris = debianUris();
  if (!uris.length) throw new Error('webgpu-setup: no Debian bookworm source found to take the backports suite from');
  fs.writeFileSync(
    BACKPORTS_FILE,
    `# added by scripts/webgpu-setup.mjs: Mesa 25's Vulkan driver for Dawn\nTypes: deb\nURIs: ${uris.join(' ')}\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n`,
  );
  say('webgpu-setup: installing mesa-vulkan-drivers from bookworm-backports');
  run('apt-get update -qq');
  run('apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers');
  return { installed: true, drivers: vulkanDrivers() };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = ensureVulkan();
  console.log(`Vulkan drivers: ${r.drivers.join(', ') || 'none'}${r.installed ? ' (installed now)' : ''}`);
}
