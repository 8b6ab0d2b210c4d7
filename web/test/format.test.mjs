// Unit tests of the page's pure helpers (src/format.ts, nextLink and pagePath in src/api.ts), bundled by esbuild for node.
import { test } from "node:test";
import assert from "node:assert/strict";
import { build } from "esbuild";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const src = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../src");
const dir = await mkdtemp(path.join(os.tmpdir(), "iot-web-test-"));
const out = path.join(dir, "units.mjs");
await writeFile(path.join(dir, "entry.ts"), `export * from ${JSON.stringify(path.join(src, "format.ts"))};\nexport { nextLink, pagePath } from ${JSON.stringify(path.join(src, "api.ts"))};\n`);
await build({ entryPoints: [path.join(dir, "entry.ts")], bundle: true, format: "esm", platform: "node", outfile: out, logLevel: "warning" });
const u = await import(pathToFileURL(out).href);
await rm(dir, { recursive: true, force: true });

test("decimals prints each tick step exactly", () => {
  const cases = [[0.005, 3], [0.0025, 4], [0.0002, 4], [2, 0], [2.5, 1], [0.1, 1], [50, 0], [1e-9, 8], [0, 0], [NaN, 0]];
  for (const [step, want] of cases) assert.equal(u.decimals(step), want, `decimals(${step})`);
  // Lat/Lon ticks 0.0025 apart: every label distinct and exact.
  const ticks = [14.38, 14.3825, 14.385, 14.3875].map((v) => v.toFixed(u.decimals(0.0025)));
  assert.deepEqual(ticks, ["14.3800", "14.3825", "14.3850", "14.3875"]);
});

test("pagePath asks the server for the view: search, status and sort only when set", () => {
  assert.equal(u.pagePath({ limit: 50, sort: "id" }), "/api/devices?limit=50");
  assert.equal(u.pagePath({ limit: 50, sort: "-lastSeen", status: "silent", q: "ux1" }), "/api/devices?limit=50&status=silent&q=ux1&sort=-lastSeen");
  assert.equal(u.pagePath({ limit: 1, sort: "lastSeen", q: "a b&c" }), "/api/devices?limit=1&q=a+b%26c&sort=lastSeen");
});

test("times are shown in UTC whatever the machine's zone", () => {
  assert.equal(u.fmtTime("2026-11-28T01:02:03.456+01:00"), "2026-11-28 00:02:03 UTC");
  assert.equal(u.fmtTime("2026-11-28T01:02:03Z", false), "2026-11-28 01:02 UTC");
  assert.equal(u.fmtTime(null), "—");
  assert.equal(u.fmtAgo(null), "never");
  assert.equal(u.fmtAgo("2026-11-28T01:00:00Z", Date.parse("2026-11-28T01:03:10Z")), "3 min ago");
});

test("medianGap finds the data's real spacing, not the window's", () => {
  // 5-second windows holding one value a minute (the 1h view of 1-minute data).
  const times = [];
  const vals = [];
  for (let i = 0; i < 720; i++) {
    times.push(new Date(Date.UTC(2026, 10, 28, 0, 0, 5 * i)).toISOString());
    vals.push(i % 12 === 0 ? 20 + i / 100 : null);
  }
  assert.equal(u.medianGap(times, { Temperature: vals }), 60_000);
  assert.equal(u.everyText(60_000), "minute");
  assert.equal(u.everyText(15 * 60_000), "15 minutes");
  assert.equal(u.everyText(3_600_000), "hour");
  assert.equal(u.durationMs("5s"), 5000);
  assert.equal(u.durationMs("raw"), null);
  assert.equal(u.medianGap([], {}), null);
});

test("nextLink follows only an API path with rel=next", () => {
  assert.equal(u.nextLink('</api/devices?limit=40&after=ux40>; rel="next"'), "/api/devices?limit=40&after=ux40");
  assert.equal(u.nextLink('</api/devices?limit=40&after=a>; rel="prev", </api/devices?after=b&limit=40>; rel="next"'), "/api/devices?after=b&limit=40");
  assert.equal(u.nextLink('<https://evil.example/api/devices>; rel="next"'), null);
  assert.equal(u.nextLink(null), null);
});

test("withGaps breaks a series where its points are further apart than the limit, and only there", () => {
  // a device every 60 s with a two-day hole; generated points in between (another series)
  const day = 86400;
  const real = { xs: [0, 60, 120, 2 * day + 120, 2 * day + 180], ys: [1, 2, 3, 4, 5] };
  const gen = { xs: [30, 90], ys: [7, 8] };
  const { xs, ys } = u.withGaps([real, gen], 180);
  assert.deepEqual(xs, [...xs].sort((a, b) => a - b), "times ascending");
  assert.equal(ys[0].filter((v) => v === null).length, 1, "one break in the device's series");
  const brk = xs[ys[0].indexOf(null)];
  assert.ok(brk > 120 && brk < 2 * day + 120, `the break lies inside the hole: ${brk}`);
  assert.equal(ys[1].filter((v) => v === null).length, 0, "no break in the generated series (30 → 90)");
  assert.equal(ys[0][xs.indexOf(30)], undefined, "the device's series goes on across a generated point");
  assert.equal(ys[1][xs.indexOf(60)], undefined);
  assert.deepEqual(ys[0].filter((v) => typeof v === "number"), [1, 2, 3, 4, 5]);
  const none = u.withGaps([{ xs: [0, 60], ys: [null, 2] }], 100);
  assert.deepEqual(none, { xs: [60], ys: [[2]] }, "null values are not points");
});
