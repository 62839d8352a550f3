// Builds the widget into ../assistant/api/static/widget/: the extras chunk (lead form, handoff) and
// the panel chunk that names it, each under a content hash,
// the admin console's dashboard chunk, then the loaders (widget.js IIFE, widget.mjs ESM) that name it, then manifest.json.
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "assistant", "api", "static", "widget");
const common = { bundle: true, minify: true, write: false, target: "es2020", legalComments: "none" };

function hashed(stem, bytes) {
  return `${stem}-${createHash("sha256").update(bytes).digest("hex").slice(0, 12)}.js`;
}

mkdirSync(out, { recursive: true });
for (const name of readdirSync(out)) rmSync(join(out, name), { recursive: true, force: true });

const extras = (await build({ ...common, entryPoints: [join(here, "src/extras.ts")], format: "esm" })).outputFiles[0].contents;
const extrasFile = hashed("extras", extras);
writeFileSync(join(out, extrasFile), extras);

const panelDefine = { EXTRAS_FILE: JSON.stringify(extrasFile) };
const panel = (await build({ ...common, entryPoints: [join(here, "src/panel.ts")], format: "esm", define: panelDefine })).outputFiles[0].contents;
const panelFile = hashed("panel", panel);
writeFileSync(join(out, panelFile), panel);

const dashboard = (await build({ ...common, entryPoints: [join(here, "src/dashboard.ts")], format: "esm" })).outputFiles[0].contents;
const dashboardFile = hashed("dashboard", dashboard);
writeFileSync(join(out, dashboardFile), dashboard);

const define = { PANEL_FILE: JSON.stringify(panelFile) };
const loader = (await build({ ...common, entryPoints: [join(here, "src/iife.ts")], format: "iife", define })).outputFiles[0].contents;
const module = (await build({ ...common, entryPoints: [join(here, "src/esm.ts")], format: "esm", define })).outputFiles[0].contents;
writeFileSync(join(out, "widget.js"), loader);
writeFileSync(join(out, "widget.mjs"), module);

const size = (bytes) => ({ bytes: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length });
const manifest = {
  "widget.js": { file: "widget.js", ...size(loader) },
  "widget.mjs": { file: "widget.mjs", ...size(module) },
  panel: { file: panelFile, ...size(panel) },
  extras: { file: extrasFile, ...size(extras) },
  dashboard: { file: dashboardFile, ...size(dashboard) },
};
writeFileSync(join(out, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
for (const [name, entry] of Object.entries(manifest)) {
  console.log(`${name.padEnd(12)} ${entry.file.padEnd(24)} ${entry.bytes} B, ${entry.gzip} B gzipped`);
}
