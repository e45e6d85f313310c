/**
 * The HTML shell of a webview panel: a strict Content-Security-Policy (no remote resources, no
 * inline script; scripts and style elements only with this page's nonce), every file through
 * asWebviewUri, and resources limited to the bundle's webview folder and media/.
 */
import * as vscode from 'vscode';
import { randomBytes } from 'crypto';

export function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewOptions & vscode.WebviewPanelOptions {
  return {
    enableScripts: true,
    localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist', 'webview'), vscode.Uri.joinPath(extensionUri, 'media')],
  };
}

export function webviewHtml(webview: vscode.Webview, extensionUri: vscode.Uri, o: { title: string; script: string; styles: string[] }): string {
  const nonce = randomBytes(16).toString('base64');
  const uri = (...p: string[]) => webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, ...p)).toString();
  const csp = [
    "default-src 'none'",
    `img-src ${webview.cspSource} data:`,
    `font-src ${webview.cspSource}`,
    `style-src ${webview.cspSource} 'nonce-${nonce}'`,
    `script-src 'nonce-${nonce}'`,
  ].join('; ');
  const esc = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${uri('dist', 'webview', 'codicon.css')}" id="vscode-codicon-stylesheet" nonce="${nonce}">
${o.styles.map((s) => `<link rel="stylesheet" href="${uri(...s.split('/'))}" nonce="${nonce}">`).join('\n')}
<title>${esc(o.title)}</title>
</head>
<body>
<div id="app" role="main"></div>
<script nonce="${nonce}" src="${uri('dist', 'webview', o.script)}"></script>
</body>
</html>`;
}
