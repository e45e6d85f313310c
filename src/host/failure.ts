/**
 * A failed stage, said where the user looks: the notification carries the first reason in words
 * (not "see the output") and the buttons that fix or show it: Open File at the bad line, Show
 * Problems, Train Reward Model for a model without a score head, Show Log.
 */
import * as vscode from 'vscode';
import { fileLineOf, reasonOf } from './log-lines';

export async function reportFailure(title: string, errors: string[], cwd: string, log: vscode.LogOutputChannel): Promise<void> {
  const reason = errors.length ? reasonOf(errors[0]) : 'the worker stopped without saying why';
  const at = fileLineOf(reason, cwd);
  const actions: string[] = [];
  if (at) actions.push('Open File', 'Show Problems');
  if (/no score head/.test(reason)) actions.push('Train Reward Model');
  actions.push('Show Log');
  const pick = await vscode.window.showErrorMessage(`RLHF: ${title} failed: ${reason}`, ...actions);
  if (pick === 'Open File' && at) {
    const doc = await vscode.workspace.openTextDocument(at.file);
    const line = Math.max(0, Math.min(doc.lineCount - 1, at.line - 1));
    await vscode.window.showTextDocument(doc, { selection: new vscode.Range(line, 0, line, doc.lineAt(line).text.length) });
  } else if (pick === 'Show Problems') await vscode.commands.executeCommand('workbench.actions.view.problems');
  else if (pick === 'Train Reward Model') await vscode.commands.executeCommand('rlhf.trainRm');
  else if (pick === 'Show Log') log.show();
}
