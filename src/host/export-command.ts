/**
 * "RLHF: Export Run for TRL or OpenRLHF…" (Runs view context menu and palette): `rlhf export` on
 * the chosen run into .rlhf/exports/<run>-<trainer>/, then the export's README opens.
 */
import * as vscode from 'vscode';
import * as fs from 'fs';
import * as path from 'path';
import { runCliJson } from './cli-json';
import { listRuns, type RunNode } from '../data/runs-tree';

const EXPORTABLE = ['sft', 'rm', 'dpo', 'ppo', 'grpo', 'rloo'];

export function registerExportCommand(context: vscode.ExtensionContext, runsDir: () => string | undefined, folder: () => string | undefined): void {
  context.subscriptions.push(
    vscode.commands.registerCommand('rlhf.runs.export', async (node?: RunNode) => {
      const ws = folder(), dir = runsDir();
      if (!ws || !dir) return void vscode.window.showErrorMessage('RLHF: open a folder first.');
      if (!vscode.workspace.isTrusted) return void vscode.window.showWarningMessage('RLHF: exporting writes into the workspace; it is disabled in an untrusted workspace.');
      let run = node?.kind === 'run' ? node.dir : undefined;
      if (!run) {
        const done = listRuns(dir).filter((r) => EXPORTABLE.includes(r.info.stage) && r.info.status === 'completed');
        if (!done.length) return void vscode.window.showInformationMessage('RLHF: no finished SFT, reward-model, DPO, PPO, GRPO or RLOO run to export yet.');
        run = (await vscode.window.showQuickPick(done.map((r) => ({ label: r.info.id, description: `${r.info.stage}${r.metric ? ` · ${r.metric}` : ''}`, dir: r.dir })), { placeHolder: 'Run to export', ignoreFocusOut: true }))?.dir;
        if (!run) return;
      }
      const trainer = await vscode.window.showQuickPick(
        [
          { label: 'OpenRLHF 0.11', description: 'deepspeed (SFT, RM, DPO) or ray job submit (PPO, GRPO, RLOO)', value: 'openrlhf' },
          { label: 'TRL 1.9', description: 'trl sft | reward | dpo | grpo | rloo with accelerate and DeepSpeed ZeRO-2', value: 'trl' },
        ],
        { placeHolder: 'Trainer to hand the run to', ignoreFocusOut: true },
      );
      if (!trainer) return;
      let out = path.join(ws, '.rlhf', 'exports', `${path.basename(run)}-${trainer.value}`);
      for (let i = 2; fs.existsSync(out); i++) out = path.join(ws, '.rlhf', 'exports', `${path.basename(run)}-${trainer.value}-${i}`);
      const result = await runCliJson(context.extensionPath, ['export', run, '--for', trainer.value, '--out', out], ws);
      if (result.code !== 0) return void vscode.window.showErrorMessage(`RLHF: ${result.error ?? `rlhf export exited with ${result.code}`}`);
      const readme = vscode.Uri.file(path.join(out, 'README.md'));
      await vscode.commands.executeCommand('markdown.showPreview', readme).then(undefined, () => vscode.window.showTextDocument(readme));
      const pick = await vscode.window.showInformationMessage(`RLHF: exported ${path.basename(run)} for ${trainer.label} into ${vscode.workspace.asRelativePath(out)}: data, model, train.sh and train.slurm.sh.`, 'Reveal in Explorer', 'Open train.sh');
      if (pick === 'Reveal in Explorer') await vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(out));
      if (pick === 'Open train.sh') await vscode.window.showTextDocument(vscode.Uri.file(path.join(out, 'train.sh')));
    }),
  );
}
