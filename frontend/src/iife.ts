// widget.js: <script src="https://HOST/widget.js" data-assistant="pk_..." async></script>.
// Reads its own src for the server, starts the widget and exposes window.Assistant.

import { close, identify, init, open } from "./widget";
import type { InitOptions } from "./types";

declare global {
  interface Window {
    Assistant?: {
      init(options: InitOptions): void;
      open(which?: string): void;
      close(which?: string): void;
      identify(identity: string | null, which?: string): void;
    };
  }
}

const script = document.currentScript as HTMLScriptElement | null;
const defaultHost = script ? new URL(script.src, location.href).origin : location.origin;

window.Assistant = {
  init: (options) => void init(options, defaultHost),
  open,
  close,
  identify,
};

if (script && (script.dataset.assistant || script.dataset.name)) {
  const data = script.dataset;
  const start = () =>
    init(
      {
        key: data.assistant,
        assistant: data.name,
        target: data.target,
        lang: data.lang,
        open: data.open === "true",
      },
      defaultHost,
    );
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
}
