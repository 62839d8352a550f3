// The loader: finds its server, renders a labelled launcher in a Shadow DOM, fetches the
// public configuration and loads the panel chunk on first open. Nothing here touches
// ``window`` or ``document`` until ``init`` is called, so the ESM build is safe to import
// during server-side rendering.

import { format, pickLanguage, stringsFor } from "./i18n";
import { h, icon, sheet } from "./dom";
import { LAUNCHER_CSS } from "./loader-styles";
import { readSession, storageKey, writeSession } from "./session";
import type { Failure, InitOptions, PanelContext, PanelHandle, Session, WidgetConfig } from "./types";

declare const PANEL_FILE: string;

const HEX = /^#[0-9a-fA-F]{6}$/;
const ICON = "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z";

/** One widget on the page: one assistant, floating or inline. */
export class Widget {
  readonly host: string;
  readonly key: string | null;
  name: string;
  private identity: string | null = null;
  private element: HTMLElement;
  private shadow: ShadowRoot;
  private theme = sheet("");
  private launcher: HTMLButtonElement | null = null;
  private panel: Promise<PanelHandle> | null = null;
  private config: WidgetConfig | null = null;
  private failure: Failure | null = null;
  private ready: Promise<void>;
  private lang: string;

  constructor(options: InitOptions, defaultHost: string) {
    this.host = (options.host ?? defaultHost).replace(/\/+$/, "");
    this.key = options.key ?? null;
    this.name = options.assistant ?? "";
    this.lang = pickLanguage([
      options.lang,
      document.documentElement.lang,
      ...(navigator.languages ?? [navigator.language]),
    ]);
    const target =
      typeof options.target === "string" ? document.querySelector(options.target) : options.target;
    this.element = h("div", { "data-assistant-widget": "" });
    this.shadow = this.element.attachShadow({ mode: "open" });
    this.shadow.adoptedStyleSheets = [sheet(LAUNCHER_CSS), this.theme];
    if (target) {
      this.element.className = "inline";
      target.append(this.element);
    } else {
      this.element.className = "floating";
      this.launcher = this.buildLauncher();
      this.shadow.append(this.launcher);
      document.body.append(this.element);
    }
    this.ready = this.load().then(() => {
      this.emit("assistant:ready", { assistant: this.name, ok: this.failure === null });
      if (target || options.open) this.open();
    });
  }

  /** Open the panel (loading it on first use). */
  open(): void {
    void this.ready.then(() => this.loadPanel()).then((panel) => {
      if (this.launcher) this.launcher.hidden = true;
      this.launcher?.setAttribute("aria-expanded", "true");
      panel.open();
    });
  }

  /** Close the panel; focus goes back to the launcher. */
  close(): void {
    void this.panel?.then((panel) => panel.close());
  }

  /** Keep the session under ``identity`` from now on (another person gets another session). */
  identify(identity: string | null): void {
    this.identity = identity;
    void this.panel?.then((panel) => panel.reload());
  }

  private emit(type: string, detail: unknown): void {
    const event = () => new CustomEvent(type, { detail, bubbles: false });
    this.element.dispatchEvent(event());
    window.dispatchEvent(event());
  }

  private buildLauncher(): HTMLButtonElement {
    const { strings } = stringsFor(this.lang);
    const button = h("button", {
      type: "button",
      class: "launcher",
      "aria-haspopup": "dialog",
      "aria-expanded": "false",
      "aria-label": format(strings.open, { name: this.name || "assistant" }),
    });
    button.append(icon(ICON), h("span", {}, "Chat"));
    button.addEventListener("click", () => this.open());
    return button;
  }

  private storage(): string {
    return storageKey(this.host, this.key ?? this.name, this.identity);
  }

  session(): Session {
    return readSession(this.storage());
  }

  headers(): Record<string, string> {
    const result: Record<string, string> = {};
    if (this.key) result.Authorization = `Bearer ${this.key}`;
    const token = this.session().token;
    if (token) result["X-Visitor-Token"] = token;
    return result;
  }

  /** Keep a visitor token the server issued with ``response``. */
  remember(response: Response): void {
    const token = response.headers.get("X-Visitor-Token");
    if (token) writeSession(this.storage(), { ...this.session(), token });
  }

  private async load(): Promise<void> {
    const query = this.name ? `?assistant=${encodeURIComponent(this.name)}` : "";
    try {
      const response = await fetch(`${this.host}/api/widget/config${query}`, {
        headers: this.headers(),
      });
      this.remember(response);
      if (response.ok) {
        this.config = (await response.json()) as WidgetConfig;
        this.name = this.config.name;
        this.applyTheme(this.config);
      } else if (response.status === 403) {
        this.failure = { kind: "origin" };
      } else if (response.status === 429) {
        this.failure = { kind: "rate", seconds: Number(response.headers.get("Retry-After")) || 30 };
      } else {
        this.failure = { kind: "failed" };
      }
    } catch {
      this.failure = { kind: "offline" };
    }
    if (this.launcher && this.config) {
      const { strings } = stringsFor(this.lang);
      const label = format(strings.open, { name: this.config.display_name });
      this.launcher.setAttribute("aria-label", label);
    }
  }

  private applyTheme(config: WidgetConfig): void {
    // Only validated values reach CSS: hex colours and an integer.
    const primary = HEX.test(config.primary_colour) ? config.primary_colour : "#2563eb";
    const onPrimary = HEX.test(config.on_primary_colour) ? config.on_primary_colour : "#ffffff";
    const z = Number.isInteger(config.z_index) ? config.z_index : 2147483000;
    this.theme.replaceSync(
      `:host { --a-primary: ${primary}; --a-on-primary: ${onPrimary}; --a-z: ${z}; }`,
    );
    if (config.position === "bottom-left") this.element.classList.add("left");
  }

  private loadPanel(): Promise<PanelHandle> {
    if (this.panel) return this.panel;
    const { strings, dir } = stringsFor(this.lang);
    const context: PanelContext = {
      host: this.host,
      key: this.key,
      name: this.name,
      config: this.config,
      failure: this.failure,
      strings,
      dir,
      lang: this.lang,
      inline: this.launcher === null,
      shadow: this.shadow,
      session: () => this.session(),
      save: (session) => writeSession(this.storage(), session),
      headers: () => this.headers(),
      remember: (response) => this.remember(response),
      emit: (type, detail) => this.emit(type, detail),
      onClose: () => {
        if (!this.launcher) return;
        this.launcher.hidden = false;
        this.launcher.setAttribute("aria-expanded", "false");
        this.launcher.focus();
      },
    };
    this.panel = import(/* webpackIgnore: true */ `${this.host}/widget/${PANEL_FILE}`).then(
      (module: { mount(context: PanelContext): PanelHandle }) => module.mount(context),
    );
    return this.panel;
  }
}

const widgets: Widget[] = [];

/** Start a widget; the same key (or name) twice gives the same widget. */
export function init(options: InitOptions, defaultHost = ""): Widget {
  const existing = widgets.find(
    (widget) => widget.key === (options.key ?? null) && (options.key || widget.name === options.assistant),
  );
  if (existing) return existing;
  const widget = new Widget(options, defaultHost);
  widgets.push(widget);
  return widget;
}

function pick(which?: string): Widget[] {
  return which ? widgets.filter((widget) => widget.key === which || widget.name === which) : widgets;
}

/** Open the widget of ``which`` (a key or a name), or every widget. */
export function open(which?: string): void {
  for (const widget of pick(which)) widget.open();
}

/** Close the widget of ``which``, or every widget. */
export function close(which?: string): void {
  for (const widget of pick(which)) widget.close();
}

/** Tie the stored sessions to ``identity`` (a user id of the host site; ``null`` to forget). */
export function identify(identity: string | null, which?: string): void {
  for (const widget of pick(which)) widget.identify(identity);
}
