// Building elements without HTML strings: text is always a text node.

/** A new ``tag`` with attributes and children; strings become text nodes. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Record<string, string> = {},
  ...children: Array<Node | string>
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** A decorative 24x24 icon drawn in the text colour, so that it looks the same on every
 * system (emoji and symbol glyphs are missing from some fonts). ``outline``: stroked, not
 * filled; ``turn``: rotated half a turn. */
export function icon(path: string, options: { outline?: boolean; turn?: boolean } = {}): SVGSVGElement {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  if (options.outline) {
    for (const [name, value] of [["fill", "none"], ["stroke", "currentColor"], ["stroke-width", "2"],
      ["stroke-linecap", "round"], ["stroke-linejoin", "round"]]) svg.setAttribute(name, value);
  }
  const shape = document.createElementNS(SVG_NS, "path");
  shape.setAttribute("d", path);
  if (options.turn) shape.setAttribute("transform", "rotate(180 12 12)");
  svg.append(shape);
  return svg;
}

/** ``url`` when it is an absolute http(s) link, else ``null`` (javascript:, data:, paths…). */
export function webLink(url: string): string | null {
  // Only an address written out as http(s)://: browsers also read "https:host" and
  // "https:/\host" as web links, forms a filter of addresses can fail to recognise.
  if (!/^https?:\/\//i.test(url) || url.includes("\\")) return null;
  try {
    const parsed = new URL(url);
    return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
  } catch {
    return null;
  }
}

/** A link opening in a new tab without access to this page, or plain text for other URLs. */
export function safeAnchor(url: string, ...children: Array<Node | string>): HTMLElement {
  const href = webLink(url);
  if (href === null) return h("span", {}, ...children);
  return h("a", { href, target: "_blank", rel: "noopener noreferrer" }, ...children);
}

/** A stylesheet for ``adoptedStyleSheets`` (no <style> element, so a strict CSP allows it). */
export function sheet(css: string): CSSStyleSheet {
  const result = new CSSStyleSheet();
  result.replaceSync(css);
  return result;
}
