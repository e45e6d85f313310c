/**
 * Markdown for model outputs and guidelines, rendered safely: raw HTML in the text is shown as
 * text (html: false), links are limited to http(s) and mailto and open outside the panel, and
 * the page's CSP forbids scripts other than the bundle anyway.
 */
import MarkdownIt from 'markdown-it';

const md = new MarkdownIt({ html: false, linkify: false, breaks: true });
md.validateLink = (url: string) => /^(https?:|mailto:)/i.test(url.trim());
md.disable(['image']); // no remote images (the CSP would block them anyway)

export function renderMarkdown(text: string): DocumentFragment {
  const t = document.createElement('template');
  t.innerHTML = md.render(text);
  return t.content;
}
