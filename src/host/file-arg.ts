/** The file a command was invoked on: an explorer Uri or a Datasets tree node ({ path }). */
import * as vscode from 'vscode';

export function fileArg(arg: unknown): string | undefined {
  if (arg instanceof vscode.Uri) return arg.fsPath;
  if (arg && typeof arg === 'object' && 'path' in arg && typeof (arg as { path: unknown }).path === 'string') return (arg as { path: string }).path;
  return undefined;
}
