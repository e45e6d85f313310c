/**
 * Dataset problems in the Problems panel: for open documents from their live (unsaved) text,
 * updated as the user types; for files the sidebar indexed, from disk. Quick fixes where one is
 * obvious: make a duplicate id unique, delete a truncated last line.
 */
import * as vscode from 'vscode';
import { Problem } from '../../data/jsonl';
import { checkText, stageFromName } from '../../data/reader';

export function isDatasetDocument(doc: vscode.TextDocument): boolean {
  return doc.uri.scheme === 'file' && stageFromName(doc.fileName) !== undefined && doc.fileName.endsWith('.jsonl');
}

export class DatasetDiagnostics implements vscode.Disposable {
  readonly collection = vscode.languages.createDiagnosticCollection('rlhf');
  private readonly timers = new Map<string, NodeJS.Timeout>();

  toDiagnostics(doc: vscode.TextDocument | undefined, problems: Problem[]): vscode.Diagnostic[] {
    return problems.map((p) => {
      const line = Math.max(0, p.line - 1);
      const range = doc && line < doc.lineCount ? doc.lineAt(line).range : new vscode.Range(line, 0, line, 1000);
      const d = new vscode.Diagnostic(range, p.message, vscode.DiagnosticSeverity.Error);
      d.source = 'rlhf';
      if (p.message.startsWith('duplicate id')) d.code = 'duplicate-id';
      else if (p.message.includes('looks truncated')) d.code = 'truncated-line';
      return d;
    });
  }

  /** From a document's current text. */
  check(doc: vscode.TextDocument): void {
    if (!isDatasetDocument(doc)) return;
    const problems: Problem[] = [];
    checkText(doc.fileName, doc.getText(), { onProblem: (p) => problems.length < 1000 && problems.push(p) });
    this.collection.set(doc.uri, this.toDiagnostics(doc, problems));
  }

  /** Debounced, as the user types. */
  schedule(doc: vscode.TextDocument): void {
    const key = doc.uri.toString();
    clearTimeout(this.timers.get(key));
    this.timers.set(key, setTimeout(() => this.check(doc), 250));
  }

  /** From a file read on disk (not open in an editor). */
  setFromDisk(file: string, problems: Problem[]): void {
    const uri = vscode.Uri.file(file);
    if (vscode.workspace.textDocuments.some((d) => d.uri.toString() === uri.toString())) return; // the live text wins
    this.collection.set(uri, this.toDiagnostics(undefined, problems));
  }

  dispose(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.collection.dispose();
  }
}

export class DatasetQuickFixes implements vscode.CodeActionProvider {
  static readonly kinds = [vscode.CodeActionKind.QuickFix];

  provideCodeActions(doc: vscode.TextDocument, _range: vscode.Range, ctx: vscode.CodeActionContext): vscode.CodeAction[] {
    const out: vscode.CodeAction[] = [];
    for (const d of ctx.diagnostics) {
      if (d.source !== 'rlhf') continue;
      const line = doc.lineAt(d.range.start.line);
      if (d.code === 'duplicate-id') {
        try {
          const v = JSON.parse(line.text);
          const taken = new Set(doc.getText().split('\n').map((l) => { try { return String(JSON.parse(l).id); } catch { return ''; } }));
          let n = 2;
          while (taken.has(`${v.id}-${n}`)) n++;
          const fix = new vscode.CodeAction(`Make the id unique: "${v.id}-${n}"`, vscode.CodeActionKind.QuickFix);
          fix.edit = new vscode.WorkspaceEdit();
          fix.edit.replace(doc.uri, line.range, JSON.stringify({ ...v, id: `${v.id}-${n}` }));
          fix.diagnostics = [d];
          out.push(fix);
        } catch {
          /* not JSON: no fix */
        }
      } else if (d.code === 'truncated-line') {
        const fix = new vscode.CodeAction('Delete the truncated last line', vscode.CodeActionKind.QuickFix);
        fix.edit = new vscode.WorkspaceEdit();
        fix.edit.delete(doc.uri, line.rangeIncludingLineBreak);
        fix.diagnostics = [d];
        out.push(fix);
      }
    }
    return out;
  }
}
