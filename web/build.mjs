// Builds the dashboard into ../functions/ui/dist (embedded by the ui function): hashed bundles under assets/ and
// an index.html that references them. Run with `npm run build` (make ui does it after npm ci).
import { build } from "esbuild";
import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.resolve(here, "../functions/ui/dist");

// Empty dist but keep .keep (it lets `go:embed` compile on a clean clone).
await mkdir(dist, { recursive: true });
for (const name of await readdir(dist)) {
  if (name !== ".keep") await rm(path.join(dist, name), { recursive: true, force: true });
}

const result = await build({
  entryPoints: [path.join(here, "src/main.ts")],
  outdir: path.join(dist, "assets"),
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
await writeFile(path.join(dist, "index.html"), index);
const sizes = Object.entries(result.metafile.outputs).map(([o, m]) => `${path.basename(o)} ${m.bytes} B`);
console.log(`dashboard built into ${path.relative(process.cwd(), dist)}: index.html, ${sizes.join(", ")}`);
