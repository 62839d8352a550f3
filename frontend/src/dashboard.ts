// The admin console's analytics dashboard: mounted into #dashboard on /admin, reading the
// analytics API with the console's session cookie (same origin, GET only). Everything is
// built with DOM APIs; data only ever becomes text nodes or attributes.
import { h, safeAnchor, sheet } from "./dom";

interface NearestSource { url: string; title: string; score: number }
interface Cluster { label: string; count: number; previous_count: number; answer_rate: number; questions: string[] }
interface Gap { label: string; count: number; questions: string[]; nearest_sources: NearestSource[]; suggestion: string }
interface SourceUse { url: string; title: string; cited: number; in_context: number; cited_in_thumbs_down: number }
interface Quality { answer_rate: number | null; resolution_rate: number | null; csat: number | null; groundedness: number | null }
interface Volume { conversations: number; turns: number; daily_turns: number[]; previous: { conversations: number; turns: number } }
interface Analytics {
  assistant: string;
  since: string;
  until: string;
  top_questions: Cluster[];
  content_gaps: Gap[];
  source_usage: SourceUse[];
  conversation_quality: Quality & { previous: Quality };
  volume: Volume;
  leads: Leads;
}

interface Leads {
  count: number;
  previous_count: number;
  conversion_rate: number | null;
  previous_conversion_rate: number | null;
  average_score: number | null;
  items: Array<{ score: number; fields: Record<string, string>; questions: number; pricing_intent: boolean; topics: string[] }>;
}

const PERIODS = ["7d", "30d", "90d"] as const;
const SVG = "http://www.w3.org/2000/svg";

const STYLES = `
:root{color-scheme:light}
body{margin:0;font:15px/1.45 system-ui,sans-serif;background:#f6f7f9;color:#17191c}
.dash{max-width:1100px;margin:0 auto;padding:1rem}
.dash header{display:flex;flex-wrap:wrap;gap:.75rem;align-items:end;justify-content:space-between}
.dash h1{font-size:1.4rem;margin:.25rem 0}
.dash h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
.controls{display:flex;gap:.75rem;flex-wrap:wrap}
.controls label{display:flex;flex-direction:column;font-size:.85rem}
.controls select{font:inherit;padding:.3rem}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:.75rem;margin-top:1rem;padding:0;list-style:none}
.card{background:#fff;border-radius:8px;padding:.75rem 1rem;box-shadow:0 1px 3px #0002}
.card .name{font-size:.85rem;color:#4a4f57}
.card .value{font-size:1.6rem;font-weight:600}
.card .previous{font-size:.8rem;color:#4a4f57}
.chart{margin:0;background:#fff;border-radius:8px;padding:.5rem;box-shadow:0 1px 3px #0002}
.chart svg{width:100%;height:160px;display:block}
.chart rect{fill:#2f5bd3}
.chart line{stroke:#8a9099}
.table-wrap{overflow-x:auto;background:#fff;border-radius:8px;box-shadow:0 1px 3px #0002}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.45rem .6rem;border-bottom:1px solid #e3e5e8;vertical-align:top}
th{font-size:.85rem;color:#3b4047}
td.n{text-align:right;font-variant-numeric:tabular-nums}
a{color:#1f46b0}
.empty{color:#4a4f57;padding:.5rem}
.caption{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%)}
.status{min-height:1.2em;color:#4a4f57}
.logout{max-width:1100px;margin:0 auto;padding:0 1rem 1rem}
.logout button,.download{font:inherit}
`;

async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (response.status === 401) {
    window.location.assign("/admin");
    throw new Error("signed out");
  }
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return (await response.json()) as T;
}

function percent(value: number | null): string {
  return value === null ? "–" : `${Math.round(value * 100)}%`;
}

function card(name: string, value: string, previous: string): HTMLElement {
  return h("li", { class: "card" },
    h("div", { class: "name" }, name),
    h("div", { class: "value" }, value),
    h("div", { class: "previous" }, `previous: ${previous}`));
}

function cards(data: Analytics): HTMLElement {
  const q = data.conversation_quality;
  const p = q.previous;
  const v = data.volume;
  return h("ul", { class: "cards", "aria-label": "Key figures" },
    card("Conversations", String(v.conversations), String(v.previous.conversations)),
    card("Turns", String(v.turns), String(v.previous.turns)),
    card("Answer rate", percent(q.answer_rate), percent(p.answer_rate)),
    card("Resolution rate", percent(q.resolution_rate), percent(p.resolution_rate)),
    card("CSAT", percent(q.csat), percent(p.csat)),
    card("Groundedness", percent(q.groundedness), percent(p.groundedness)),
    card("Leads", String(data.leads.count), String(data.leads.previous_count)),
    card("Lead conversion", percent(data.leads.conversion_rate), percent(data.leads.previous_conversion_rate)));
}

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attributes: Record<string, string>): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

/** Turns per slice of the period (the API cuts it in equal slices: a day each for 30d) as
 * bars, each titled with its start, and a text summary for screen readers. */
function chart(daily: number[], since: string, until: string): HTMLElement {
  const start = Date.parse(since);
  const step = (Date.parse(until) - start) / Math.max(1, daily.length);
  const width = 600;
  const height = 160;
  const most = Math.max(1, ...daily);
  const slot = width / Math.max(1, daily.length);
  const total = daily.reduce((sum, n) => sum + n, 0);
  const graphic = svg("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", role: "img", "aria-label": `Turns since ${since.slice(0, 10)}: ${total} in all, at most ${Math.max(0, ...daily)} in one bar` });
  graphic.append(svg("line", { x1: "0", y1: String(height - 0.5), x2: String(width), y2: String(height - 0.5) }));
  daily.forEach((count, day) => {
    const barHeight = (count / most) * (height - 8);
    const bar = svg("rect", { x: (day * slot + slot * 0.1).toFixed(2), y: (height - barHeight).toFixed(2), width: (slot * 0.8).toFixed(2), height: barHeight.toFixed(2) });
    const title = svg("title", {});
    title.textContent = `${new Date(start + day * step).toISOString().slice(0, 16).replace("T", " ")}: ${count} turns`;
    bar.append(title);
    graphic.append(bar);
  });
  return h("figure", { class: "chart" }, graphic);
}

function table(caption: string, headers: string[], rows: Array<Array<Node | string | number>>): HTMLElement {
  if (rows.length === 0) return h("p", { class: "empty" }, `No ${caption.toLowerCase()} in this period.`);
  const head = h("tr", {}, ...headers.map((name) => h("th", { scope: "col" }, name)));
  const body = rows.map((cells) => h("tr", {}, ...cells.map((cell) =>
    typeof cell === "number" ? h("td", { class: "n" }, String(cell)) : h("td", {}, cell))));
  return h("div", { class: "table-wrap" }, h("table", {}, h("caption", { class: "caption" }, caption), h("thead", {}, head), h("tbody", {}, ...body)));
}

function sources(list: NearestSource[]): HTMLElement {
  return h("ul", {}, ...list.map((s) => h("li", {}, safeAnchor(s.url, s.title || s.url))));
}

function render(root: HTMLElement, data: Analytics, period: string): void {
  const gapsCsv = `/api/assistants/${encodeURIComponent(data.assistant)}/analytics/gaps.csv?since=${encodeURIComponent(period)}`;
  const leadsCsv = `/api/assistants/${encodeURIComponent(data.assistant)}/analytics/leads.csv?since=${encodeURIComponent(period)}`;
  root.replaceChildren(
    cards(data),
    h("h2", {}, "Turns over the period"),
    chart(data.volume.daily_turns, data.since, data.until),
    h("h2", {}, "Top questions"),
    table("Top questions", ["Question", "Asked", "Previous", "Answered"], data.top_questions.map((c) =>
      [c.questions[0] ?? c.label, c.count, c.previous_count, percent(c.answer_rate)])),
    h("h2", {}, "Content gaps"),
    h("p", {}, h("a", { href: gapsCsv, class: "download", download: "" }, "Download content gaps (CSV)")),
    table("Content gaps", ["Questions", "Count", "Nearest sources", "Suggestion"], data.content_gaps.map((g) =>
      [g.questions[0] ?? g.label, g.count, sources(g.nearest_sources), g.suggestion])),
    h("h2", {}, "Leads"),
    h("p", {}, h("a", { href: leadsCsv, class: "download", download: "" }, "Download scored leads (CSV)")),
    table("Leads", ["Score", "Contact", "Questions", "Pricing intent", "Topics"], data.leads.items.map((l) =>
      [l.score, l.fields.email ?? l.fields.name ?? "", l.questions, l.pricing_intent ? "yes" : "no", l.topics.slice(0, 3).join(", ")])),
    h("h2", {}, "Source usage"),
    table("Source usage", ["Page", "Cited", "In context", "Cited in thumbs-down answers"], data.source_usage.map((s) =>
      [safeAnchor(s.url, s.title || s.url), s.cited, s.in_context, s.cited_in_thumbs_down])),
  );
}

async function main(): Promise<void> {
  const mount = document.getElementById("dashboard");
  if (mount === null) return;
  document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet(STYLES)];
  const who = await getJson<{ kind: string; assistant: string | null }>("/admin/session");
  let names: string[];
  if (who.kind === "admin") {
    const list = await getJson<{ assistants: Array<{ name: string }> }>("/api/assistants");
    names = list.assistants.map((a) => a.name);
  } else {
    names = who.assistant === null ? [] : [who.assistant];
  }
  const assistantSelect = h("select", { id: "assistant" }, ...names.map((n) => h("option", { value: n }, n)));
  const periodSelect = h("select", { id: "period" }, ...PERIODS.map((p) => h("option", { value: p }, p)));
  periodSelect.value = "30d";
  const status = h("p", { class: "status", role: "status" });
  const content = h("div", { class: "content" });
  const main = h("main", { class: "dash" },
    h("header", {},
      h("h1", {}, "Assistant analytics"),
      h("div", { class: "controls" },
        h("label", { for: "assistant" }, "Assistant", assistantSelect),
        h("label", { for: "period" }, "Period", periodSelect))),
    status, content);
  mount.replaceChildren(main);
  if (names.length === 0) {
    status.textContent = "No assistants yet.";
    return;
  }
  let request = 0;
  const load = async (): Promise<void> => {
    const mine = ++request;
    const name = assistantSelect.value;
    const period = periodSelect.value;
    status.textContent = "Loading…";
    try {
      const data = await getJson<Analytics>(`/api/assistants/${encodeURIComponent(name)}/analytics?since=${encodeURIComponent(period)}`);
      if (mine !== request) return;
      render(content, data, period);
      status.textContent = `${name}, last ${period}`;
    } catch (error) {
      if (mine === request) status.textContent = `Could not load the analytics (${String(error)}).`;
    }
  };
  assistantSelect.addEventListener("change", () => void load());
  periodSelect.addEventListener("change", () => void load());
  await load();
}

void main();
