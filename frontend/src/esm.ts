// widget.mjs: import { init } from "https://HOST/widget.mjs". Importing touches no browser
// global, so server-side rendering can import it; call ``init`` in the browser only.

import { close, identify, init as start, open } from "./widget";
import type { InitOptions } from "./types";

/** Start a widget; ``host`` defaults to the server this module was loaded from. */
export function init(options: InitOptions): void {
  start(options, new URL(import.meta.url).origin);
}

export { close, identify, open };
export type { InitOptions };
