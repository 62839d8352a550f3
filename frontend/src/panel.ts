// The chat panel (loaded on first open): a dialog with a live log of the conversation that
// streams answers over SSE, renders them as safe Markdown with citation chips, and restores
// the visitor's conversation after a reload.

import { format } from "./i18n";
import { h, icon, safeAnchor, sheet } from "./dom";
import { render } from "./markdown";
import { PANEL_CSS, SCROLL_LOCK_CSS } from "./panel-styles";
import { readEvents } from "./sse";
import type * as Extras from "./extras";
import type { PanelContext, PanelHandle } from "./types";

/** Two overlapping sheets (copy the answer). */
const COPY_ICON = "M9 9h11v11H9z M5 15H4V4h11v1";
/** A raised thumb (helpful); turned half a turn, a lowered one (not helpful). */
const THUMB_ICON = "M7 11v9H4v-9z M7 11l4-7a2.5 2.5 0 0 1 2.5 2.5L13 10h5.5a2 2 0 0 1 2 2.3l-1.2 6a2 2 0 0 1-2 1.7H7";

declare const EXTRAS_FILE: string;

interface CitationData {
  n: number;
  title: string;
  url: string;
  quote?: string;
}

interface TurnData {
  question: string;
  answer: string;
  citations: CitationData[];
  turn_ref: string | null;
  outcome: string;
}

const FOCUSABLE = "button:not([disabled]):not([hidden]), a[href], textarea:not([disabled]), img[tabindex]";
const PHONE = "(max-width: 640px)";

/** Render the panel into the context's shadow root; the loader calls this once. */
export function mount(ctx: PanelContext): PanelHandle {
  return new Panel(ctx);
}

class Panel implements PanelHandle {
  private readonly ctx: PanelContext;
  private readonly root: HTMLElement;
  private readonly log: HTMLElement;
  private readonly status: HTMLElement;
  private readonly input: HTMLTextAreaElement;
  private readonly send: HTMLButtonElement;
  private readonly stop: HTMLButtonElement;
  private readonly suggestions: HTMLElement;
  private readonly viewport = sheet("");
  private readonly lock = sheet(SCROLL_LOCK_CSS);
  private readonly tools: HTMLElement;
  private controller: AbortController | null = null;
  private restored = false;
  private extras: Promise<typeof Extras> | null = null;

  constructor(ctx: PanelContext) {
    this.ctx = ctx;
    const s = ctx.strings;
    ctx.shadow.adoptedStyleSheets = [...ctx.shadow.adoptedStyleSheets, sheet(PANEL_CSS), this.viewport];
    const title = ctx.config?.display_name || ctx.name || "Assistant";
    const header = h("header", {});
    const logo = ctx.config?.logo_url ? safeImage(ctx.config.logo_url) : null;
    if (logo) header.append(logo);
    const restart = h("button", { type: "button" }, s.restart);
    restart.addEventListener("click", () => this.restart());
    header.append(h("h2", { id: "assistant-title" }, title), restart);
    if (!ctx.inline) {
      const close = h("button", { type: "button", "aria-label": s.close }, "✕");
      close.addEventListener("click", () => this.close());
      header.append(close);
    }
    this.log = h("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": title });
    this.suggestions = h("ul", { class: "suggestions" });
    this.tools = h("div", { class: "tools" });
    if (ctx.config?.handoff) this.tools.append(this.personButton("person"));
    if (ctx.config?.lead_form && !ctx.session().lead) {
      const details = h("button", { type: "button", class: "details" }, this.ctx.strings.details);
      details.addEventListener("click", () => this.askForDetails());
      this.tools.append(details);
    }
    this.status = h("p", { class: "status", role: "alert" });
    this.input = h("textarea", { id: "assistant-input", rows: "1", placeholder: s.placeholder });
    this.send = h("button", { type: "submit" }, s.send);
    this.stop = h("button", { type: "button", hidden: "" }, s.stop);
    this.stop.addEventListener("click", () => this.controller?.abort());
    const form = h(
      "form",
      {},
      h("label", { class: "sr", for: "assistant-input" }, s.placeholder),
      this.input,
      this.send,
      this.stop,
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.ask(this.input.value);
    });
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.ask(this.input.value);
      }
    });
    const attributes: Record<string, string> = ctx.inline
      ? { role: "region", "aria-labelledby": "assistant-title" }
      : { role: "dialog", "aria-modal": "true", "aria-labelledby": "assistant-title", hidden: "" };
    this.root = h("div", { class: `panel ${ctx.inline ? "inline" : "floating"}`, dir: ctx.dir, lang: ctx.lang, ...attributes });
    this.root.append(header, this.log, this.suggestions, this.tools, this.status, form);
    this.root.addEventListener("keydown", (event) => this.onKey(event));
    ctx.shadow.append(this.root);
    this.showGreeting();
    if (ctx.failure) this.showFailure();
    window.visualViewport?.addEventListener("resize", () => this.fitViewport());
  }

  open(): void {
    this.root.hidden = false;
    if (!this.restored) {
      this.restored = true;
      void this.restore().then(() => this.afterRestore());
    }
    if (!this.ctx.inline) {
      this.fitViewport();
      if (window.matchMedia(PHONE).matches) {
        document.adoptedStyleSheets = [...document.adoptedStyleSheets, this.lock];
      }
      this.input.focus();
    }
  }

  close(): void {
    if (this.ctx.inline) return;
    this.controller?.abort();
    this.root.hidden = true;
    document.adoptedStyleSheets = document.adoptedStyleSheets.filter((item) => item !== this.lock);
    this.ctx.onClose();
  }

  reload(): void {
    this.controller?.abort();
    this.restored = true;
    void this.restore();
  }

  private afterRestore(): void {
    const session = this.ctx.session();
    if (session.handoff) void this.withExtras((extras, host) => extras.followHandoff(host, session.handoff ?? ""));
    if (this.ctx.config?.lead_form?.show === "before_chat") this.maybeAskForDetails(0);
  }

  private withExtras(use: (extras: typeof Extras, host: Extras.ExtrasHost) => unknown): Promise<unknown> {
    // The lead form and handoff live in their own chunk, loaded on first use.
    this.extras ??= import(/* webpackIgnore: true */ `${this.ctx.host}/widget/${EXTRAS_FILE}`) as Promise<typeof Extras>;
    const host: Extras.ExtrasHost = {
      ctx: this.ctx,
      log: this.log,
      status: this.status,
      url: (path) => this.url(path),
      scroll: () => {
        this.log.scrollTop = this.log.scrollHeight;
      },
    };
    return this.extras.then((extras) => use(extras, host));
  }

  private personButton(kind: string): HTMLButtonElement {
    const button = h("button", { type: "button", class: kind }, this.ctx.strings.person);
    button.addEventListener("click", () => {
      button.disabled = true;
      void this.withExtras(async (extras, host) => {
        const id = await extras.requestHandoff(host);
        if (id) this.ctx.save({ ...this.ctx.session(), handoff: id });
        else button.disabled = false;
      });
    });
    return button;
  }

  private askForDetails(): void {
    const form = this.ctx.config?.lead_form;
    if (!form) return;
    void this.withExtras((extras, host) =>
      extras.showLeadForm(host, form, () => {
        this.ctx.save({ ...this.ctx.session(), lead: "sent" });
        this.tools.querySelector(".details")?.remove();
      }),
    );
  }

  private maybeAskForDetails(asked: number): void {
    const form = this.ctx.config?.lead_form;
    if (!form || this.ctx.session().lead) return;
    if (form.show === "before_chat" || (form.show === "after_messages" && asked >= form.after_messages)) {
      this.askForDetails();
    }
  }

  private fitViewport(): void {
    // The on-screen keyboard shrinks the visual viewport; the panel follows it so the input
    // stays visible. Only numbers reach the stylesheet.
    const viewport = window.visualViewport;
    if (!viewport) return;
    const height = Math.round(viewport.height);
    const top = Math.round(viewport.offsetTop);
    this.viewport.replaceSync(`:host { --a-vh: ${height}px; --a-top: ${top}px; }`);
  }

  private onKey(event: KeyboardEvent): void {
    if (this.ctx.inline) return;
    if (event.key === "Escape") {
      event.preventDefault();
      this.close();
    } else if (event.key === "Tab") {
      const items = [...this.root.querySelectorAll<HTMLElement>(FOCUSABLE)];
      const first = items[0];
      const last = items[items.length - 1];
      const active = this.ctx.shadow.activeElement;
      if (!first || !last) return;
      if (event.shiftKey && (active === first || !this.root.contains(active))) {
        event.preventDefault();
        last.focus();
      } else if (!event.shiftKey && (active === last || !this.root.contains(active))) {
        event.preventDefault();
        first.focus();
      }
    }
  }

  private showGreeting(): void {
    const config = this.ctx.config;
    this.log.replaceChildren();
    if (config?.greeting) this.log.append(h("p", { class: "greeting" }, config.greeting));
    this.suggestions.replaceChildren(
      ...(config?.suggested_questions ?? []).map((question) => {
        const button = h("button", { type: "button" }, question);
        button.addEventListener("click", () => this.ask(question));
        return h("li", {}, button);
      }),
    );
  }

  private showFailure(): void {
    const failure = this.ctx.failure;
    const s = this.ctx.strings;
    if (!failure) return;
    const text =
      failure.kind === "origin"
        ? s.originNotAllowed
        : failure.kind === "offline"
          ? s.offline
          : failure.kind === "rate"
            ? format(s.rateLimited, { s: failure.seconds })
            : s.failed;
    this.status.textContent = text;
    if (failure.kind === "origin") {
      this.input.disabled = true;
      this.send.disabled = true;
    }
  }

  private url(path: string): string {
    return `${this.ctx.host}/api/assistants/${encodeURIComponent(this.ctx.name)}${path}`;
  }

  private restart(): void {
    this.controller?.abort();
    this.ctx.save({ ...this.ctx.session(), conversation: null });
    this.status.textContent = "";
    this.showGreeting();
    this.input.focus();
  }

  private async restore(): Promise<void> {
    this.showGreeting();
    const session = this.ctx.session();
    if (!session.conversation || this.ctx.failure) return;
    try {
      const response = await fetch(this.url(`/widget/conversations/${encodeURIComponent(session.conversation)}`), {
        headers: this.ctx.headers(),
      });
      this.ctx.remember(response);
      if (response.status === 404) {
        this.ctx.save({ ...this.ctx.session(), conversation: null });
        return;
      }
      if (!response.ok) return;
      const data = (await response.json()) as { turns: TurnData[] };
      for (const turn of data.turns) {
        const view = this.addTurn(turn.question);
        view.body.replaceChildren(render(turn.answer));
        this.finish(view, turn.citations, turn.turn_ref, turn.outcome, turn.answer);
      }
      if (data.turns.length) this.suggestions.replaceChildren();
    } catch {
      // Offline: the visitor can still ask; the earlier turns come back on the next open.
    }
  }

  private addTurn(question: string): { bot: HTMLElement; body: HTMLElement } {
    const body = h("div", { class: "body" });
    const bot = h("div", { class: "msg bot" }, body);
    this.log.append(h("div", { class: "msg user" }, h("span", { class: "sr" }, `${this.ctx.strings.you}: `), question), bot);
    return { bot, body };
  }

  private finish(
    view: { bot: HTMLElement; body: HTMLElement },
    citations: CitationData[],
    turnRef: string | null,
    outcome: string,
    answer: string,
  ): void {
    const s = this.ctx.strings;
    if (outcome === "no_answer") {
      view.bot.append(h("p", { class: "note" }, s.noAnswer));
      if (this.ctx.config?.handoff) view.bot.append(this.personButton("offer"));
    }
    if (citations.length) {
      const list = h("ol", { class: "cites", "aria-label": s.sources });
      for (const citation of citations) {
        const chip = safeAnchor(
          citation.url,
          h("span", { class: "n" }, String(citation.n)),
          h("span", { class: "t" }, citation.title || citation.url),
        );
        chip.classList.add("chip");
        chip.setAttribute("title", citation.quote ? `${citation.title}: ${citation.quote}` : citation.title);
        list.append(h("li", {}, chip));
      }
      view.bot.append(list);
    }
    const actions = h("div", { class: "actions" });
    const copy = h("button", { type: "button", "aria-label": s.copy }, icon(COPY_ICON, { outline: true }));
    copy.addEventListener("click", () => {
      void navigator.clipboard?.writeText(answer).then(() => copy.setAttribute("aria-label", s.copied));
    });
    actions.append(copy);
    if (turnRef) {
      for (const [rating, label] of [[1, s.helpful], [-1, s.notHelpful]] as const) {
        const glyph = icon(THUMB_ICON, { outline: true, turn: rating < 0 });
        const button = h("button", { type: "button", "aria-label": label, "aria-pressed": "false" }, glyph);
        button.addEventListener("click", () => void this.rate(turnRef, rating, button, actions));
        actions.append(button);
      }
    }
    view.bot.append(actions);
  }

  private async rate(turnRef: string, rating: 1 | -1, button: HTMLElement, actions: HTMLElement): Promise<void> {
    const response = await fetch(this.url("/widget/feedback"), {
      method: "POST",
      headers: { ...this.ctx.headers(), "Content-Type": "application/json" },
      body: JSON.stringify({ turn: turnRef, rating }),
    }).catch(() => null);
    if (!response?.ok) return;
    for (const other of actions.querySelectorAll("[aria-pressed]")) other.setAttribute("aria-pressed", "false");
    button.setAttribute("aria-pressed", "true");
    this.status.textContent = this.ctx.strings.thanks;
  }

  private busy(on: boolean): void {
    this.send.hidden = on;
    this.stop.hidden = !on;
    this.input.disabled = on;
    if (!on && !this.root.hidden) this.input.focus();
  }

  private ask(raw: string): void {
    const question = raw.trim();
    if (!question || this.controller || this.ctx.failure?.kind === "origin") return;
    this.input.value = "";
    this.status.textContent = "";
    this.suggestions.replaceChildren();
    void this.stream(question, true);
  }

  private async stream(question: string, retry: boolean): Promise<void> {
    const s = this.ctx.strings;
    const controller = new AbortController();
    this.controller = controller;
    this.busy(true);
    const view = this.addTurn(question);
    view.body.textContent = s.thinking;
    this.ctx.emit("assistant:message", { role: "user", text: question });
    let answer = "";
    let citations: CitationData[] = [];
    let turnRef: string | null = null;
    let outcome = "answered";
    let pending = 0;
    const paint = () => {
      pending = 0;
      view.body.replaceChildren(render(answer));
      this.log.scrollTop = this.log.scrollHeight;
    };
    try {
      const response = await fetch(this.url("/chat"), {
        method: "POST",
        headers: { ...this.ctx.headers(), "Content-Type": "application/json", Accept: "text/event-stream" },
        body: JSON.stringify({ message: question, conversation_id: this.ctx.session().conversation, stream: true }),
        signal: controller.signal,
      });
      this.ctx.remember(response);
      if (!response.ok || !response.body) {
        view.bot.remove();
        view.bot.previousElementSibling?.remove();
        if (response.status === 404 && retry && this.ctx.session().conversation) {
          // The stored conversation is gone (deleted, or another visitor's): start a new one.
          this.ctx.save({ ...this.ctx.session(), conversation: null });
          this.controller = null;
          return await this.stream(question, false);
        }
        this.status.textContent =
          response.status === 403
            ? s.originNotAllowed
            : response.status === 429
              ? format(s.rateLimited, { s: Number(response.headers.get("Retry-After")) || 30 })
              : response.status >= 500
                ? s.providerError
                : s.failed;
        return;
      }
      for await (const event of readEvents(response.body)) {
        const data = JSON.parse(event.data) as Record<string, unknown>;
        if (event.event === "sources" && typeof data.conversation_id === "string") {
          this.ctx.save({ ...this.ctx.session(), conversation: data.conversation_id });
        } else if (event.event === "text") {
          answer += String(data.text ?? "");
          pending ||= requestAnimationFrame(paint);
        } else if (event.event === "citations") {
          citations = (data.citations as CitationData[]) ?? [];
        } else if (event.event === "done") {
          turnRef = typeof data.turn_ref === "string" ? data.turn_ref : null;
          outcome = String(data.outcome ?? "answered");
        } else if (event.event === "error") {
          this.status.textContent = s.providerError;
        }
      }
    } catch (error) {
      if (!controller.signal.aborted) this.status.textContent = navigator.onLine ? s.failed : s.offline;
      if (!controller.signal.aborted && error instanceof TypeError && answer === "") this.status.textContent = s.offline;
    } finally {
      if (pending) cancelAnimationFrame(pending);
      if (view.bot.isConnected) {
        paint();
        if (answer === "") view.body.textContent = "";
        this.finish(view, citations, turnRef, outcome, answer);
      }
      this.controller = null;
      this.busy(false);
    }
    this.ctx.emit("assistant:message", { role: "assistant", text: answer, conversation: this.ctx.session().conversation });
    if (this.ctx.config?.lead_form?.show === "after_messages") {
      this.maybeAskForDetails(this.log.querySelectorAll(".msg.user").length);
    }
  }
}

function safeImage(url: string): HTMLImageElement | null {
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== "https:" && parsed.protocol !== "http:") return null;
    return h("img", { src: parsed.href, alt: "" });
  } catch {
    return null;
  }
}
