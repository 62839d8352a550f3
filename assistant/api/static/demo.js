// The demo chat page: streams answers from the chat API and shows their sources.
// Everything the server or the content provides is inserted as text, never as HTML.
"use strict";

const params = new URLSearchParams(location.search);
const key = params.get("key");
const state = { assistant: params.get("assistant") || "", conversation: null };
const visitor = (() => {
  let id = localStorage.getItem("assistant-demo-visitor");
  if (!id) {
    id = crypto.randomUUID();
    localStorage.setItem("assistant-demo-visitor", id);
  }
  return id;
})();

function headers(extra) {
  const result = { "X-Visitor-Id": visitor, ...extra };
  if (key) result.Authorization = "Bearer " + key;
  return result;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function safeLink(url, label) {
  // Only web links become anchors; a file path or a javascript: URL stays plain text.
  try {
    const parsed = new URL(url);
    if (parsed.protocol === "https:" || parsed.protocol === "http:") {
      const anchor = element("a", "", label);
      anchor.href = parsed.href;
      anchor.target = "_blank";
      anchor.rel = "noopener noreferrer";
      return anchor;
    }
  } catch (error) { /* not a URL: shown as text */ }
  return element("span", "", label + " (" + url + ")");
}

async function loadAssistants() {
  const select = document.getElementById("assistant");
  let names = state.assistant ? [state.assistant] : [];
  if (!key) {
    const response = await fetch("/api/assistants", { headers: headers() });
    if (response.ok) names = (await response.json()).assistants.map((a) => a.name);
  }
  if (!names.length) names = ["default"];
  select.replaceChildren(...names.map((name) => element("option", "", name)));
  select.value = state.assistant && names.includes(state.assistant) ? state.assistant : names[0];
  state.assistant = select.value;
  select.addEventListener("change", () => {
    state.assistant = select.value;
    state.conversation = null;
    loadWidget();
  });
  await loadWidget();
}

async function loadWidget() {
  const response = await fetch(
    "/api/assistants/" + encodeURIComponent(state.assistant) + "/widget",
    { headers: headers() },
  );
  if (!response.ok) return;
  const widget = await response.json();
  document.getElementById("title").textContent = widget.display_name || widget.name;
  document.getElementById("greeting").textContent = widget.greeting;
  document.documentElement.style.setProperty("--primary", widget.primary_colour);
  const list = document.getElementById("suggestions");
  list.replaceChildren(...widget.suggested_questions.map((question) => {
    const item = element("li");
    const button = element("button", "", question);
    button.type = "button";
    button.addEventListener("click", () => ask(question));
    item.append(button);
    return item;
  }));
}

function* parseEvents(buffer) {
  // Server-sent events: blocks separated by a blank line, "event:" and "data:" fields.
  for (const block of buffer.split("\n\n")) {
    let type = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) type = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
    }
    if (data.length) yield { type, data: JSON.parse(data.join("\n")) };
  }
}

async function ask(message) {
  const log = document.getElementById("log");
  const turn = element("article", "turn");
  const answer = element("div", "answer");
  const citations = element("ol", "citations");
  const meta = element("div", "meta");
  turn.append(element("div", "question", message), answer, citations, meta);
  log.append(turn);
  const response = await fetch(
    "/api/assistants/" + encodeURIComponent(state.assistant) + "/chat",
    {
      method: "POST",
      headers: headers({ "Content-Type": "application/json" }),
      body: JSON.stringify({ message, conversation_id: state.conversation, stream: true }),
    },
  );
  if (!response.ok) {
    const problem = await response.json().catch(() => ({ detail: response.statusText }));
    answer.append(element("span", "error", problem.detail || problem.title));
    return;
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    pending += value.replace(/\r\n/g, "\n");
    const cut = pending.lastIndexOf("\n\n");
    if (cut < 0) continue;
    const complete = pending.slice(0, cut);
    pending = pending.slice(cut + 2);
    for (const event of parseEvents(complete)) {
      if (event.type === "sources") state.conversation = event.data.conversation_id;
      else if (event.type === "text") answer.append(document.createTextNode(event.data.text));
      else if (event.type === "citations") {
        for (const citation of event.data.citations) {
          const item = element("li");
          item.value = citation.n;
          item.append(safeLink(citation.url, citation.title || citation.url));
          item.append(element("div", "meta", "“" + citation.quote + "”"));
          citations.append(item);
        }
      } else if (event.type === "done") {
        const seconds = (event.data.timings_ms.total / 1000).toFixed(2);
        meta.textContent = event.data.provider + " · " + seconds + " s";
        if (event.data.turn_id !== null) meta.append(" ", feedback(event.data.turn_id));
      } else if (event.type === "error") {
        answer.append(element("div", "error", event.data.message));
      }
    }
  }
}

function feedback(turnId) {
  const box = element("span");
  for (const [label, rating] of [["👍", 1], ["👎", -1]]) {
    const button = element("button", "", label);
    button.type = "button";
    button.addEventListener("click", async () => {
      await fetch(
        "/api/assistants/" + encodeURIComponent(state.assistant) + "/turns/" + turnId + "/feedback",
        {
          method: "POST",
          headers: headers({ "Content-Type": "application/json" }),
          body: JSON.stringify({ rating, comment: "" }),
        },
      );
      box.textContent = "thanks!";
    });
    box.append(button);
  }
  return box;
}

document.getElementById("ask").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = document.getElementById("message");
  const message = input.value.trim();
  input.value = "";
  if (message) ask(message);
});
document.getElementById("reset").addEventListener("click", () => {
  state.conversation = null;
  document.getElementById("log").replaceChildren();
});
loadAssistants();
