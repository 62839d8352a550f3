// The lead form and the handoff to a person, in their own chunk: the panel loads it only
// for assistants that collect leads or hand conversations to people.

import { h, sheet } from "./dom";
import type { LeadFormConfig, PanelContext } from "./types";

const EMAIL = /^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$/;
const PHONE = /^\+?[0-9 ()./-]{6,24}$/;
const POLL_MS = 2000;

const CSS = `
form.lead { flex-direction: column; align-items: stretch; gap: 6px; padding: 10px 12px; margin: 0;
  border: 1px solid var(--a-border); border-radius: 12px; background: var(--a-soft); }
form.lead h3 { margin: 0 0 4px; font-size: 15px; }
form.lead label { font-size: 14px; }
form.lead input[type=text], form.lead input[type=email], form.lead input[type=tel] { min-height: 44px;
  padding: 8px 10px; font: inherit; font-size: 16px; color: var(--a-fg); background: var(--a-bg);
  border: 1px solid var(--a-muted); border-radius: 8px; }
form.lead input[aria-invalid=true] { border-color: #b91c1c; }
form.lead .error { margin: 0; font-size: 13px; color: #b91c1c; }
form.lead .error:empty { display: none; }
form.lead .consent { display: flex; gap: 8px; align-items: flex-start; }
form.lead .consent input { width: 24px; height: 24px; margin: 2px 0 0; }
.agent { align-self: flex-start; background: var(--a-bg); border: 2px solid var(--a-primary); white-space: pre-wrap; }
.agent .who { display: block; font-size: 13px; font-weight: 700; }
.tools { display: flex; flex-wrap: wrap; gap: 6px; padding: 0 12px 6px; }
.tools:empty { display: none; }
.tools button, .offer { min-height: 44px; padding: 6px 12px; border: 1px solid var(--a-primary); border-radius: 18px;
  background: var(--a-bg); color: var(--a-fg); font: inherit; font-size: 14px; cursor: pointer; }
`;


/** What the panel lends the extras: where to write and how to call the server. */
export interface ExtrasHost {
  ctx: PanelContext;
  log: HTMLElement;
  status: HTMLElement;
  url(path: string): string;
  scroll(): void;
}


let styled = false;

function style(ctx: PanelContext): void {
  if (styled) return;
  styled = true;
  ctx.shadow.adoptedStyleSheets = [...ctx.shadow.adoptedStyleSheets, sheet(CSS)];
}

/** Show the lead form in the log; ``done`` runs once the server stored the details. */
export function showLeadForm(host: ExtrasHost, form: LeadFormConfig, done: () => void): void {
  const s = host.ctx.strings;
  style(host.ctx);
  const existing = host.log.querySelector("form.lead");
  if (existing) {
    existing.querySelector<HTMLInputElement>("input")?.focus();
    return;
  }
  const element = h("form", { class: "lead msg", novalidate: "", "aria-labelledby": "lead-title" });
  element.append(h("h3", { id: "lead-title" }, form.title || s.details));
  const inputs: Array<[HTMLInputElement, HTMLElement, (typeof form.fields)[number]]> = [];
  for (const field of form.fields) {
    const id = `lead-${field.key}`;
    const type = field.kind === "email" ? "email" : field.kind === "phone" ? "tel" : "text";
    const complete = { name: "name", email: "email", phone: "tel", company: "organization", text: "off" }[field.kind];
    const input = h("input", { id, name: field.key, type, autocomplete: complete, "aria-describedby": `${id}-error` });
    if (field.required) input.setAttribute("aria-required", "true");
    const error = h("p", { class: "error", id: `${id}-error` });
    const label = (field.label || field.key) + (field.required ? " *" : "");
    element.append(h("label", { for: id }, label), input, error);
    inputs.push([input, error, field]);
  }
  let consent: HTMLInputElement | null = null;
  const consentError = h("p", { class: "error", id: "lead-consent-error" });
  if (form.consent_text) {
    consent = h("input", { id: "lead-consent", type: "checkbox", "aria-describedby": "lead-consent-error" });
    element.append(h("div", { class: "consent" }, consent, h("label", { for: "lead-consent" }, form.consent_text)), consentError);
  }
  const submit = h("button", { type: "submit" }, s.submit);
  element.append(submit);
  element.addEventListener("submit", (event) => {
    event.preventDefault();
    const fields: Record<string, string> = {};
    let first: HTMLInputElement | null = null;
    for (const [input, error, field] of inputs) {
      const value = input.value.trim();
      const problem =
        !value && field.required
          ? s.required
          : value && field.kind === "email" && !EMAIL.test(value)
            ? s.email
            : value && field.kind === "phone" && !PHONE.test(value)
              ? s.phone
              : "";
      error.textContent = problem;
      input.setAttribute("aria-invalid", problem ? "true" : "false");
      if (problem) first ??= input;
      if (value) fields[field.key] = value;
    }
    consentError.textContent = consent && !consent.checked ? s.consent : "";
    if (first) return first.focus();
    if (consent && !consent.checked) return consent.focus();
    submit.disabled = true;
    void send(host, fields, consent?.checked ?? false).then((ok) => {
      submit.disabled = false;
      if (!ok) return;
      element.replaceWith(h("p", { class: "note lead-done" }, s.leadThanks));
      done();
    });
  });
  host.log.append(element);
  host.scroll();
  inputs[0]?.[0].focus();
}

async function send(host: ExtrasHost, fields: Record<string, string>, consent: boolean): Promise<boolean> {
  const s = host.ctx.strings;
  const response = await fetch(host.url("/widget/leads"), {
    method: "POST",
    headers: { ...host.ctx.headers(), "Content-Type": "application/json" },
    body: JSON.stringify({ fields, consent, conversation_id: host.ctx.session().conversation }),
  }).catch(() => null);
  if (response) host.ctx.remember(response);
  if (response?.status === 201) return true;
  let detail = s.leadFailed;
  if (response?.status === 400) detail = ((await response.json()) as { detail?: string }).detail ?? detail;
  host.status.textContent = detail;
  return false;
}

interface HandoffData {
  id: string;
  status: string;
  messages: Array<{ id: number; role: string; author: string; text: string }>;
}

const seen = new Set<number>();
let timer = 0;

function show(host: ExtrasHost, data: HandoffData): void {
  const s = host.ctx.strings;
  for (const message of data.messages) {
    if (message.role !== "agent" || seen.has(message.id)) continue;
    seen.add(message.id);
    host.log.append(h("div", { class: "msg agent" }, h("span", { class: "who" }, message.author || s.agent), message.text));
    host.scroll();
  }
  if (data.status === "closed") {
    window.clearInterval(timer);
    timer = 0;
    host.log.append(h("p", { class: "note" }, s.closed));
  }
}

/** Follow handoff ``id``: its agents' replies appear in the log as they come. */
export function followHandoff(host: ExtrasHost, id: string): void {
  style(host.ctx);
  window.clearInterval(timer);
  const poll = async () => {
    const response = await fetch(host.url(`/widget/handoffs/${encodeURIComponent(id)}`), {
      headers: host.ctx.headers(),
    }).catch(() => null);
    if (response?.ok) show(host, (await response.json()) as HandoffData);
    else if (response?.status === 404) window.clearInterval(timer);
  };
  timer = window.setInterval(() => void poll(), POLL_MS);
  void poll();
}

/** Ask for a person about the current conversation; returns the handoff's id. */
export async function requestHandoff(host: ExtrasHost): Promise<string | null> {
  const s = host.ctx.strings;
  style(host.ctx);
  const response = await fetch(host.url("/widget/handoffs"), {
    method: "POST",
    headers: { ...host.ctx.headers(), "Content-Type": "application/json" },
    body: JSON.stringify({ conversation_id: host.ctx.session().conversation }),
  }).catch(() => null);
  if (response) host.ctx.remember(response);
  if (response?.status !== 201) {
    host.status.textContent = s.leadFailed;
    return null;
  }
  const data = (await response.json()) as HandoffData;
  host.log.append(h("p", { class: "note handoff-note", role: "status" }, host.ctx.config?.handoff_confirmation || s.requested));
  host.scroll();
  followHandoff(host, data.id);
  return data.id;
}
