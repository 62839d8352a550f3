// A safe Markdown subset rendered by building elements: paragraphs, lists, code (inline and
// fenced), tables, emphasis and http(s) links. Text is never parsed as HTML, so page and
// model text can hold any markup and it shows as typed.

import { h, safeAnchor } from "./dom";

const INLINE = /(`[^`]+`)|(\*\*[^*]+\*\*)|(\[[^\]]+\]\((?:[^()\s]|\([^()\s]*\))+\))|(https?:\/\/[^\s<>()]+[^\s<>().,;:!?'"])/g;

/** Inline Markdown of ``text`` as nodes. */
export function inline(text: string): Node[] {
  const nodes: Node[] = [];
  let last = 0;
  for (const match of text.matchAll(INLINE)) {
    const index = match.index ?? 0;
    if (index > last) nodes.push(document.createTextNode(text.slice(last, index)));
    const [whole, code, strong, link, bare] = match;
    if (code) nodes.push(h("code", {}, code.slice(1, -1)));
    else if (strong) nodes.push(h("strong", {}, strong.slice(2, -2)));
    else if (link) {
      const close = link.indexOf("](");
      nodes.push(safeAnchor(link.slice(close + 2, -1), link.slice(1, close)));
    } else if (bare) nodes.push(safeAnchor(bare, bare));
    last = index + whole.length;
  }
  if (last < text.length) nodes.push(document.createTextNode(text.slice(last)));
  return nodes;
}

const BULLET = /^\s*[-*+]\s+(.*)$/;
const NUMBERED = /^\s*\d+[.)]\s+(.*)$/;
const TABLE_RULE = /^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$/;

function cells(line: string): string[] {
  return line.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").map((cell) => cell.trim());
}

/** ``source`` rendered as block elements (a fragment). */
export function render(source: string): DocumentFragment {
  const out = document.createDocumentFragment();
  const lines = source.replace(/\r\n?/g, "\n").split("\n");
  let i = 0;
  while (i < lines.length) {
    const line = lines[i] ?? "";
    if (line.trim() === "") {
      i += 1;
    } else if (line.trimStart().startsWith("```")) {
      const body: string[] = [];
      i += 1;
      while (i < lines.length && !(lines[i] ?? "").trimStart().startsWith("```")) body.push(lines[i++] ?? "");
      i += 1;
      out.append(h("pre", {}, h("code", {}, body.join("\n"))));
    } else if (line.includes("|") && TABLE_RULE.test(lines[i + 1] ?? "")) {
      const head = h("tr", {}, ...cells(line).map((cell) => h("th", { scope: "col" }, ...inline(cell))));
      const rows: HTMLTableRowElement[] = [];
      i += 2;
      while (i < lines.length && (lines[i] ?? "").includes("|")) {
        rows.push(h("tr", {}, ...cells(lines[i++] ?? "").map((cell) => h("td", {}, ...inline(cell)))));
      }
      out.append(h("div", { class: "table" }, h("table", {}, h("thead", {}, head), h("tbody", {}, ...rows))));
    } else if (BULLET.test(line) || NUMBERED.test(line)) {
      const pattern = BULLET.test(line) ? BULLET : NUMBERED;
      const list = h(pattern === BULLET ? "ul" : "ol");
      while (i < lines.length && pattern.test(lines[i] ?? "")) {
        const item = (lines[i++] ?? "").match(pattern)?.[1] ?? "";
        list.append(h("li", {}, ...inline(item)));
      }
      out.append(list);
    } else {
      const body: string[] = [];
      while (
        i < lines.length &&
        (lines[i] ?? "").trim() !== "" &&
        !BULLET.test(lines[i] ?? "") &&
        !NUMBERED.test(lines[i] ?? "") &&
        !(lines[i] ?? "").trimStart().startsWith("```")
      ) {
        body.push((lines[i++] ?? "").replace(/^#{1,6}\s+/, ""));
      }
      out.append(h("p", {}, ...inline(body.join("\n"))));
    }
  }
  return out;
}
