// Styles of the host element and the launcher. Theme values are custom properties, set by a
// second adopted sheet built from validated numbers and hex colours only.

export const LAUNCHER_CSS = `
:host { all: initial; --a-primary: #2563eb; --a-on-primary: #ffffff; --a-z: 2147483000;
  --a-bg: #ffffff; --a-fg: #111827; --a-muted: #4b5563; --a-border: #d1d5db; --a-soft: #f3f4f6;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--a-fg); }
@media (prefers-color-scheme: dark) {
  :host { --a-bg: #111827; --a-fg: #f9fafb; --a-muted: #d1d5db; --a-border: #374151; --a-soft: #1f2937; }
}
:host(.floating) { position: fixed; bottom: 20px; right: 20px; z-index: var(--a-z); }
:host(.floating.left) { right: auto; left: 20px; }
:host(.inline) { display: block; height: 100%; }
.launcher { display: inline-flex; align-items: center; gap: 8px; min-height: 56px; min-width: 56px;
  padding: 0 20px 0 16px; border: 0; border-radius: 28px; cursor: pointer; font: inherit;
  font-size: 16px; font-weight: 600; background: var(--a-primary); color: var(--a-on-primary);
  box-shadow: 0 4px 14px rgba(0, 0, 0, 0.25); }
.launcher svg { width: 24px; height: 24px; fill: currentColor; }
.launcher:focus-visible { outline: 3px solid var(--a-fg); outline-offset: 3px; }
.launcher[hidden] { display: none; }
`;
