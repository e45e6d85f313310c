/** A short message in the corner, read out by screen readers (role status). */
import { h } from './vscode-api';

export function toast(): { el: HTMLElement; say(text: string): void } {
  const el = h('div', { class: 'toast', role: 'status', 'aria-live': 'polite' });
  let timer: ReturnType<typeof setTimeout> | undefined;
  return {
    el,
    say(text: string) {
      el.textContent = text;
      el.classList.add('shown');
      clearTimeout(timer);
      timer = setTimeout(() => el.classList.remove('shown'), 4000);
    },
  };
}
