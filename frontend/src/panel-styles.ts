// Styles of the chat panel (adopted by the Shadow DOM, never a <style> element).

export const PANEL_CSS = `
.panel { box-sizing: border-box; display: flex; flex-direction: column; background: var(--a-bg);
  color: var(--a-fg); font-size: 15px; line-height: 1.5; }
.panel[hidden] { display: none; }
.panel *, .panel *::before, .panel *::after { box-sizing: inherit; }
.panel.floating { position: fixed; bottom: 20px; right: 20px; width: 400px;
  height: min(680px, calc(100vh - 40px)); border: 1px solid var(--a-border); border-radius: 16px;
  box-shadow: 0 12px 40px rgba(0, 0, 0, 0.3); overflow: hidden; }
:host(.left) .panel.floating { right: auto; left: 20px; }
.panel.inline { height: 100%; min-height: 420px; }
header { display: flex; align-items: center; gap: 10px; padding: 10px 12px; background: var(--a-primary);
  color: var(--a-on-primary); }
header img { width: 32px; height: 32px; border-radius: 50%; object-fit: cover; }
h2 { flex: 1; margin: 0; font-size: 17px; font-weight: 600; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
header button { min-width: 44px; min-height: 44px; border: 0; border-radius: 8px; background: transparent;
  color: inherit; font: inherit; font-size: 14px; cursor: pointer; }
header button:hover { background: rgba(0, 0, 0, 0.15); }
header button:focus-visible { outline: 3px solid var(--a-on-primary); outline-offset: -3px; }
.log { flex: 1; overflow-y: auto; padding: 12px 14px; display: flex; flex-direction: column; gap: 12px;
  overscroll-behavior: contain; }
.greeting { margin: 0; color: var(--a-fg); }
.msg { max-width: 92%; padding: 8px 12px; border-radius: 12px; overflow-wrap: anywhere; }
.user { align-self: flex-end; background: var(--a-primary); color: var(--a-on-primary); white-space: pre-wrap; }
.bot { align-self: flex-start; background: var(--a-soft); }
.bot p { margin: 0 0 8px; white-space: pre-wrap; }
.bot p:last-child { margin-bottom: 0; }
.bot ul, .bot ol { margin: 0 0 8px; padding-inline-start: 22px; }
.bot pre { margin: 0 0 8px; padding: 8px; overflow-x: auto; border-radius: 8px; background: var(--a-bg);
  border: 1px solid var(--a-border); }
.bot code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 13px; }
.bot .table { overflow-x: auto; margin-bottom: 8px; }
.bot table { border-collapse: collapse; font-size: 14px; }
.bot th, .bot td { border: 1px solid var(--a-border); padding: 4px 8px; text-align: start; }
.bot a, .cites a { color: inherit; text-decoration: underline; }
.note { margin: 6px 0 0; font-size: 14px; color: var(--a-muted); }
.cites { list-style: none; margin: 8px 0 0; padding: 0; display: flex; flex-wrap: wrap; gap: 6px; }
.cites a, .cites span.chip { display: inline-flex; align-items: center; gap: 6px; min-height: 32px; max-width: 100%;
  padding: 4px 10px; border: 1px solid var(--a-border); border-radius: 16px; background: var(--a-bg);
  font-size: 13px; text-decoration: none; }
.cites .n { font-weight: 700; }
.cites .t { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; max-width: 220px; }
.actions { display: flex; gap: 4px; margin-top: 6px; }
.actions button { min-width: 44px; min-height: 44px; border: 1px solid var(--a-border); border-radius: 8px;
  background: var(--a-bg); color: var(--a-fg); font: inherit; font-size: 14px; cursor: pointer; }
.actions button[aria-pressed="true"] { border-color: var(--a-fg); font-weight: 700; }
.actions button svg { width: 18px; height: 18px; vertical-align: middle; }
.actions button[aria-pressed="true"] svg { fill: currentColor; fill-opacity: 0.2; }
.suggestions { list-style: none; margin: 0; padding: 0 14px 8px; display: flex; flex-wrap: wrap; gap: 6px; }
.suggestions button { min-height: 44px; padding: 6px 12px; border: 1px solid var(--a-primary); border-radius: 18px;
  background: var(--a-bg); color: var(--a-fg); font: inherit; font-size: 14px; cursor: pointer; text-align: start; }
.status { margin: 0; padding: 8px 14px; font-size: 14px; background: var(--a-soft); color: var(--a-fg);
  border-top: 1px solid var(--a-border); }
.status:empty { display: none; }
form { display: flex; gap: 8px; padding: 10px 12px; border-top: 1px solid var(--a-border); align-items: flex-end; }
textarea { flex: 1; min-height: 44px; max-height: 140px; resize: none; padding: 10px 12px; font: inherit;
  font-size: 16px; color: var(--a-fg); background: var(--a-bg); border: 1px solid var(--a-muted); border-radius: 10px; }
form button { min-width: 64px; min-height: 44px; padding: 0 14px; border: 0; border-radius: 10px; font: inherit;
  font-size: 16px; font-weight: 600; cursor: pointer; background: var(--a-primary); color: var(--a-on-primary); }
form button[hidden] { display: none; }
button:focus-visible, textarea:focus-visible, a:focus-visible { outline: 3px solid var(--a-fg); outline-offset: 2px; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
@media (max-width: 640px) {
  .panel.floating { inset: 0; top: var(--a-top, 0px); width: 100%; height: var(--a-vh, 100dvh);
    max-height: none; border-radius: 0; border: 0; }
}
@media (prefers-reduced-motion: no-preference) { .log { scroll-behavior: smooth; } }
`;

/** Locks the host page's scrolling while the full-screen panel is open on a phone. */
export const SCROLL_LOCK_CSS = "html, body { overflow: hidden !important; overscroll-behavior: none; }";
