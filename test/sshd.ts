/**
 * A private sshd on 127.0.0.1 for tests of the `--ssh HOST` paths: its own host key, a test user
 * key, a config file for the ssh client (RLHF_SSH_CONFIG) naming the host `rlhf-login`, and the
 * environment every session gets (SetEnv, e.g. SLURM_CONF for the private Slurm cluster).
 * Debian's openssh-server (.ci/run installs it). `stop()` ends it by its process id.
 */
import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { tmpDir } from './helpers';

export interface Sshd {
  host: string;
  /** The ssh client's config file (pass as RLHF_SSH_CONFIG). */
  config: string;
  stop(): void;
}

export const SSHD = '/usr/sbin/sshd';

export async function startSshd(sessionEnv: Record<string, string> = {}): Promise<Sshd> {
  const dir = tmpDir('rlhf-sshd-');
  for (const k of ['host_key', 'user_key']) spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, k)]);
  fs.copyFileSync(path.join(dir, 'user_key.pub'), path.join(dir, 'authorized_keys'));
  fs.mkdirSync('/run/sshd', { recursive: true }); // sshd's privilege separation folder
  const port = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const user = process.env.USER ?? 'root';
  fs.writeFileSync(path.join(dir, 'sshd_config'), [
    `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${dir}/host_key`, `PidFile ${dir}/sshd.pid`, `AuthorizedKeysFile ${dir}/authorized_keys`,
    'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'PermitRootLogin prohibit-password', 'StrictModes no', 'UsePAM no',
    ...(Object.keys(sessionEnv).length ? [`SetEnv ${Object.entries(sessionEnv).map(([k, v]) => `${k}=${v}`).join(' ')}`] : []), '',
  ].join('\n'));
  const config = path.join(dir, 'ssh_config');
  fs.writeFileSync(config, ['Host rlhf-login', '  HostName 127.0.0.1', `  Port ${port}`, `  User ${user}`, `  IdentityFile ${dir}/user_key`, '  IdentitiesOnly yes', '  StrictHostKeyChecking no', '  UserKnownHostsFile /dev/null', '  LogLevel ERROR', ''].join('\n'));
  const p: ChildProcess = spawn(SSHD, ['-D', '-e', '-f', path.join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', fs.openSync(path.join(dir, 'sshd.log'), 'a')] });
  for (let i = 0; ; i++) {
    if (spawnSync('ssh', ['-F', config, '-o', 'BatchMode=yes', 'rlhf-login', 'true']).status === 0) break;
    if (i > 50 || p.exitCode !== null) {
      p.kill('SIGKILL');
      throw new Error(`the test sshd did not start: ${fs.readFileSync(path.join(dir, 'sshd.log'), 'utf8').slice(-500)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { host: 'rlhf-login', config, stop: () => p.kill('SIGTERM') };
}
