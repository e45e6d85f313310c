import { test } from 'node:test';
import assert from 'node:assert/strict';
import Module from 'module';
import * as path from 'path';
import { ROOT, tmpDir } from '../helpers';

/** A stand-in for the `vscode` module: every property is a no-op function, object or class. */
function stub(overrides: Record<string | symbol, unknown> = {}): unknown {
  const handler: ProxyHandler<() => unknown> = {
    get: (_t, key) => (key in overrides ? overrides[key] : key === 'then' ? undefined : key === Symbol.toPrimitive ? () => '' : stub()),
    apply: () => stub(),
    construct: () => stub() as object,
  };
  return new Proxy(function () {}, handler);
}

test('the extension host bundle activates in under 100 ms and loads no TensorFlow.js', (t) => {
  const resolve = (Module as unknown as { _resolveFilename: (r: string, ...a: unknown[]) => string })._resolveFilename;
  // the bundle copies the module's own keys (esbuild's __toESM), so they must exist
  const names = ['window', 'workspace', 'commands', 'languages', 'env', 'EventEmitter', 'TreeItem', 'ThemeIcon', 'ThemeColor', 'MarkdownString', 'Uri', 'Range', 'Diagnostic', 'DiagnosticSeverity', 'CodeAction', 'CodeActionKind', 'WorkspaceEdit', 'TreeItemCollapsibleState', 'StatusBarAlignment', 'ProgressLocation', 'RelativePattern', 'Disposable'];
  const vscode: Record<string, unknown> = Object.fromEntries(names.map((n) => [n, stub()]));
  // an empty window: no folder open, settings at their defaults
  vscode.workspace = stub({ workspaceFolders: undefined, textDocuments: [], isTrusted: true, getConfiguration: () => ({ get: (_k: string, d: unknown) => d }) });
  (Module as unknown as { _resolveFilename: unknown })._resolveFilename = function (request: string, ...rest: unknown[]) {
    return request === 'vscode' ? 'vscode' : resolve.call(this, request, ...rest);
  };
  require.cache.vscode = { id: 'vscode', filename: 'vscode', loaded: true, exports: vscode } as unknown as NodeJS.Module;
  try {
    const before = Object.keys(require.cache).length;
    const t0 = performance.now();
    const ext = require(path.join(ROOT, 'dist', 'extension.js'));
    ext.activate({ subscriptions: [], extensionPath: ROOT, globalStorageUri: { fsPath: tmpDir() }, workspaceState: stub(), globalState: stub() });
    const ms = performance.now() - t0;
    t.diagnostic(`require + activate: ${ms.toFixed(1)} ms`);
    assert.ok(ms < 100, `load + activate took ${ms.toFixed(1)} ms`);
    const loaded = Object.keys(require.cache).slice(before);
    assert.ok(!loaded.some((f) => f.includes('@tensorflow')), 'no TensorFlow.js in the host');
  } finally {
    (Module as unknown as { _resolveFilename: unknown })._resolveFilename = resolve;
    delete require.cache.vscode;
  }
});
