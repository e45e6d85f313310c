/** The webview side of the VS Code API: one handle, typed state, and validated incoming messages. */
interface VsCodeApi<S> {
  postMessage(message: unknown): void;
  getState(): S | undefined;
  setState(state: S): void;
}
declare function acquireVsCodeApi<S>(): VsCodeApi<S>;

export function connect<S, In, Out>(parse: (v: unknown) => In | undefined, onMessage: (m: In) => void) {
  const api = acquireVsCodeApi<S>();
  window.addEventListener('message', (e: MessageEvent) => {
    const m = parse(e.data);
    if (m) onMessage(m);
    else console.warn('ignored an invalid message from the extension', e.data);
  });
  return {
    post: (m: Out) => api.postMessage(m),
    getState: () => api.getState(),
    setState: (s: S) => api.setState(s),
  };
}

/** Creates an element with attributes and children (text children are set as text, never parsed as HTML). */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Record<string, string | boolean | undefined>, ...children: (Node | string | undefined)[]): HTMLElementTagNameMap[K];
export function h(tag: string, attrs?: Record<string, string | boolean | undefined>, ...children: (Node | string | undefined)[]): HTMLElement;
export function h(tag: string, attrs: Record<string, string | boolean | undefined> = {}, ...children: (Node | string | undefined)[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== undefined) el.append(c);
  return el;
}
