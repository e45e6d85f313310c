/**
 * Dataset text and model output inside Markdown (record previews, tooltips, Generate): shown as
 * text, never as markup. An untrusted dataset must not add images that load remote URLs, links,
 * HTML or headings, and a response must not close the code block it is shown in.
 */

/** Text with every Markdown-significant character backslash-escaped (CommonMark allows it for any ASCII punctuation), on one line. */
export function escapeMarkdown(s: string): string {
  return s.replace(/[\\`*_{}[\]()<>#+\-.!|~&"']/g, (c) => `\\${c}`).replace(/\r?\n|\r/g, ' ');
}

/** A fenced code block that no content can close: the fence is longer than any run of backticks inside. */
export function codeBlock(s: string, lang = 'text'): string {
  const longest = Math.max(0, ...(s.match(/`+/g) ?? []).map((r) => r.length));
  const fence = '`'.repeat(Math.max(3, longest + 1));
  return `${fence}${lang}\n${s}\n${fence}`;
}
