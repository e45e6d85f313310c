/**
 * Markdown for model outputs and guidelines, rendered safely: raw HTML in the text is shown as
 * text (html: false), links are limited to http(s) and mailto and open outside the panel, and
 * the page's CSP forbids scripts other than the bundle anyway.
 */
import MarkdownIt from 'markdown-it';

function make(breaks: boolean) {
  const md = new MarkdownIt({ html: false, linkify: false, breaks });
  md.validateLink = (url: string) => /^(https?:|mailto:)/i.test(url.trim());
  md.disable(['image']); // no remote images (the CSP would block them anyway)
  return md;
}
/** Model output keeps its line breaks; documents (guidelines) wrap as Markdown does. */
const output = make(true), document_ = make(false);

export function renderMarkdown(text: string, o: { document?: boolean } = {}): DocumentFragment {
  const t = document.createElement('template');
  t.innerHTML = (o.document ? document_ : output).render(text);
  return t.content;
}
