// Builds the dashboard into ../functions/ui/dist (embedded by the ui function): hashed bundles under assets/ and
// an index.html that references them. Run with `npm run build` (make ui does it after npm ci).
import { build } from "esbuild";
import { mkdir, mkdtemp, readdir, rename, rm, writeFile } from "node:fs/promises";
import { rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.resolve(here, "../functions/ui/dist");

// Build into a scratch folder, then move files in with renames: a `go build` embedding dist at the same moment (make
// runs builds in parallel) sees the old set or the new one, never a half-written file or an empty folder.
await mkdir(path.join(dist, "assets"), { recursive: true });
// Beside dist, not in it: go:embed all:dist would otherwise pick up a half-built folder.
const scratch = await mkdtemp(path.join(path.dirname(dist), ".dist-build-"));
process.on("exit", () => rmSync(scratch, { recursive: true, force: true }));

const result = await build({
  entryPoints: [path.join(here, "src/main.ts")],
  outdir: path.join(scratch, "assets"),
  entryNames: "[name]-[hash]",
  assetNames: "[name]-[hash]",
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2020"],
  metafile: true,
  legalComments: "linked",
  logLevel: "warning",
});

// Find the entry's JS and its CSS in the metafile.
let js = "";
let css = "";
for (const [out, meta] of Object.entries(result.metafile.outputs)) {
  if (meta.entryPoint && out.endsWith(".js")) {
    js = path.basename(out);
    if (meta.cssBundle) css = path.basename(meta.cssBundle);
  }
}
if (!js || !css) throw new Error(`build: entry outputs not found (js=${js} css=${css})`);

const index = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>IoT Center</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/${css}">
<script type="module" src="/assets/${js}"></script>
</head>
<body>
<div id="app"><noscript>IoT Center needs JavaScript.</noscript></div>
</body>
</html>
`;
await writeFile(path.join(scratch, "index.html"), index);

// Hashed names are content-addressed: moving one over an existing file of the same name changes nothing.
const fresh = new Set();
for (const name of await readdir(path.join(scratch, "assets"))) {
  fresh.add(name);
  await rename(path.join(scratch, "assets", name), path.join(dist, "assets", name));
}
await rename(path.join(scratch, "index.html"), path.join(dist, "index.html"));
await rm(scratch, { recursive: true, force: true });
// Then drop what the new index.html no longer references (and anything else that is not ours; .keep stays).
for (const name of await readdir(path.join(dist, "assets"))) {
  if (!fresh.has(name)) await rm(path.join(dist, "assets", name), { recursive: true, force: true });
}
for (const name of await readdir(dist)) {
  if (![".keep", "assets", "index.html"].includes(name)) await rm(path.join(dist, name), { recursive: true, force: true });
}
const sizes = Object.entries(result.metafile.outputs).map(([o, m]) => `${path.basename(o)} ${m.bytes} B`);
console.log(`dashboard built into ${path.relative(process.cwd(), dist)}: index.html, ${sizes.join(", ")}`);
