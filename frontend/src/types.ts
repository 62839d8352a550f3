// Shapes shared by the loader and the panel chunk.

import type { Strings } from "./i18n";

/** Public presentation of an assistant, from ``GET /api/widget/config``. */
export interface WidgetConfig {
  name: string;
  display_name: string;
  greeting: string;
  suggested_questions: string[];
  logo_url: string | null;
  primary_colour: string;
  on_primary_colour: string;
  position: "bottom-right" | "bottom-left";
  z_index: number;
  language: string;
  handoff?: boolean;
  handoff_confirmation?: string;
  lead_form?: LeadFormConfig | null;
}

/** An assistant's lead form, as configured by its owner. */
export interface LeadFormConfig {
  title: string;
  fields: Array<{ key: string; kind: "name" | "email" | "phone" | "company" | "text"; label: string; required: boolean }>;
  consent_text: string;
  show: "before_chat" | "after_messages" | "on_request";
  after_messages: number;
}

/** Why the configuration could not be loaded; the panel explains it to the visitor. */
export type Failure =
  | { kind: "origin" }
  | { kind: "offline" }
  | { kind: "rate"; seconds: number }
  | { kind: "failed" };

/** Options of ``Assistant.init``; the script tag's ``data-*`` attributes map onto them. */
export interface InitOptions {
  /** The public key (``pk_...``); omit on a keyless local server. */
  key?: string;
  /** The assistant's name; needed only without a key. */
  assistant?: string;
  /** Base URL of the assistant server; defaults to where the script came from. */
  host?: string;
  /** An element (or a selector) to render into, full size, instead of the floating launcher. */
  target?: string | Element;
  lang?: string;
  /** Open the panel as soon as it is ready. */
  open?: boolean;
}

/** Where the visitor's token and conversation are kept between page loads. */
export interface Session {
  token: string | null;
  conversation: string | null;
  /** The id of the lead the visitor left, so the form is not shown again. */
  lead?: string | null;
  /** The visitor's handoff to a person, followed again after a reload. */
  handoff?: string | null;
}

/** What the loader hands to the panel chunk. */
export interface PanelContext {
  host: string;
  key: string | null;
  name: string;
  config: WidgetConfig | null;
  failure: Failure | null;
  strings: Strings;
  dir: "ltr" | "rtl";
  lang: string;
  inline: boolean;
  shadow: ShadowRoot;
  session: () => Session;
  save: (session: Session) => void;
  headers: () => Record<string, string>;
  remember: (response: Response) => void;
  emit: (type: string, detail: unknown) => void;
  onClose: () => void;
}

/** What the panel chunk gives back. */
export interface PanelHandle {
  open(): void;
  close(): void;
  reload(): void;
}
