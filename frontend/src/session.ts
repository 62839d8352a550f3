// The visitor's token and conversation, kept in localStorage per assistant and per identified
// visitor, so two assistants on one page and two people on one browser never share a session.

import type { Session } from "./types";

const EMPTY: Session = { token: null, conversation: null };

/** The storage key of an assistant's session (``identity`` after ``Assistant.identify``). */
export function storageKey(host: string, assistant: string, identity: string | null): string {
  return ["assistant-widget", host, assistant, identity ?? ""].join("|");
}

/** The stored session, or an empty one (no storage, private mode, or damaged value). */
export function readSession(key: string): Session {
  try {
    const raw = window.localStorage.getItem(key);
    if (!raw) return { ...EMPTY };
    const value = JSON.parse(raw) as Partial<Session>;
    return {
      token: typeof value.token === "string" ? value.token : null,
      conversation: typeof value.conversation === "string" ? value.conversation : null,
      lead: typeof value.lead === "string" ? value.lead : null,
      handoff: typeof value.handoff === "string" ? value.handoff : null,
    };
  } catch {
    return { ...EMPTY };
  }
}

/** Store ``session``; storage that refuses (quota, private mode) keeps it for this page only. */
export function writeSession(key: string, session: Session): void {
  try {
    window.localStorage.setItem(key, JSON.stringify(session));
  } catch {
    // The conversation still works; it just does not survive a reload.
  }
}
