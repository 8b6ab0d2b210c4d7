// End-to-end test of the dashboard in a real browser (Debian's Chromium driven by playwright-core) against a running
// local API: register a device, write missing data and watch the bar reach 100%, open its dashboard and check the
// five plots (and the Lat/Lon trace) hold data and were drawn, delete the device. Screenshots go to ARTIFACTS.
//
// Env: BASE_URL (http://127.0.0.1:3000), OPERATOR_KEY (or KEYS_FILE, a keys.env with IOT_OPERATOR_KEY=...),
// ARTIFACTS (test-artifacts), SCREENSHOTS_DIR (when set, one screenshot of each screen is copied there).
import { chromium } from "playwright-core";
import { copyFile, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../..");
const BASE_URL = (process.env.BASE_URL ?? "http://127.0.0.1:3000").replace(/\/$/, "");
const ARTIFACTS = path.resolve(repo, process.env.ARTIFACTS ?? "test-artifacts");
const SCREENSHOTS_DIR = process.env.SCREENSHOTS_DIR ? path.resolve(repo, process.env.SCREENSHOTS_DIR) : "";
const BACKFILL_TIMEOUT_MS = Number(process.env.BACKFILL_TIMEOUT_MS ?? 240_000);
const STEP_TIMEOUT_MS = 30_000;
// The series colors of web/src/plots.ts: a drawn plot has pixels of its color on the canvas.
const COLORS = { Temperature: "#e8590c", Humidity: "#1c7ed6", Pressure: "#7048e8", CO2: "#2b8a3e", TVOC: "#c2255c", LatLon: "#364fc7" };
const FIVE = ["Temperature", "Humidity", "Pressure", "CO2", "TVOC"];

if (!/^http:\/\/(127\.0\.0\.1|localhost|\[::1\]):\d+$/.test(BASE_URL)) {
  console.error(`BASE_URL must be a loopback http URL, got ${BASE_URL}`);
  process.exit(2);
}

async function operatorKey() {
  if (process.env.OPERATOR_KEY) return process.env.OPERATOR_KEY;
  const file = process.env.KEYS_FILE ?? path.join(repo, ".local/keys.env");
  const text = await readFile(file, "utf8");
  const m = /^(?:export\s+)?IOT_OPERATOR_KEY=["']?([^"'\s]+)/m.exec(text);
  if (!m) throw new Error(`no IOT_OPERATOR_KEY in ${file}`);
  return m[1];
}

const results = [];
async function step(name, fn) {
  const t0 = Date.now();
  try {
    const v = await fn();
    results.push({ name, ok: true });
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
    return v;
  } catch (e) {
    results.push({ name, ok: false });
    console.log(`FAIL ${name}: ${e.message}`);
    throw e;
  }
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

// drawnPixels counts canvas pixels within a small distance of the hex color (the series stroke).
async function drawnPixels(locator, hex) {
  return locator.evaluate((el, hex) => {
    const c = el.querySelector("canvas");
    if (!c) return -1;
    const want = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
    const ctx = c.getContext("2d");
    const { data } = ctx.getImageData(0, 0, c.width, c.height);
    let n = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (data[i + 3] > 200 && Math.abs(data[i] - want[0]) + Math.abs(data[i + 1] - want[1]) + Math.abs(data[i + 2] - want[2]) < 40) n++;
    }
    return n;
  }, hex);
}

async function main() {
  const key = await operatorKey();
  await mkdir(ARTIFACTS, { recursive: true });
  const profile = await mkdtemp(path.join(os.tmpdir(), "iot-e2e-chromium-"));
  const deviceId = `e2e-${Date.now().toString(36)}`;
  const secondId = `${deviceId}-b`;
  const shots = [];
  const pageErrors = [];
  let ctx;
  try {
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
      headless: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync"],
      viewport: { width: 1400, height: 1000 },
      timeout: STEP_TIMEOUT_MS,
    });
    const page = ctx.pages()[0] ?? (await ctx.newPage());
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    page.on("pageerror", (e) => pageErrors.push(`pageerror: ${e.message}`));
    page.on("console", (m) => {
      if (m.type() === "error" && !/Failed to load resource/.test(m.text())) pageErrors.push(`console: ${m.text()}`);
    });
    const shot = async (name) => {
      const file = path.join(ARTIFACTS, `ui-${name}.png`);
      await page.screenshot({ path: file, fullPage: true });
      shots.push(file);
    };

    await step("page loads with hashed, immutable assets", async () => {
      const res = await page.goto(`${BASE_URL}/`, { waitUntil: "load" });
      assert(res.status() === 200, `GET / status ${res.status()}`);
      const src = await page.locator("script[type=module]").getAttribute("src");
      assert(/^\/assets\/main-[A-Z0-9]{8}\.js$/.test(src), `script src ${src} is not a hashed asset`);
      const js = await page.request.get(`${BASE_URL}${src}`, { headers: { "Accept-Encoding": "gzip" } });
      assert(js.status() === 200, `asset status ${js.status()}`);
      assert(/immutable/.test(js.headers()["cache-control"] ?? ""), `asset cache-control ${js.headers()["cache-control"]}`);
    });

    await step("operator key kept in sessionStorage", async () => {
      await page.fill("#operator-key", key);
      await page.click("#save-key");
      const stored = await page.evaluate(() => sessionStorage.getItem("iot-center.operatorKey"));
      assert(stored === key, "the key is not in sessionStorage");
      await page.waitForSelector("main[data-page=devices][data-loaded]:not([data-loaded=error])");
    });

    await step(`register ${deviceId}`, async () => {
      await page.fill("#new-device-id", deviceId);
      await page.click("#register");
      await page.waitForSelector(`tr[data-device="${deviceId}"]`);
      await shot("devices");
    });

    await step("config shows the token masked until asked; rotate issues a new one", async () => {
      await page.click(`tr[data-device="${deviceId}"] button.config`);
      const pre = page.locator("#config-json");
      await pre.waitFor();
      const masked = JSON.parse(await pre.textContent());
      assert(masked.id === deviceId && masked.influx_bucket, `config ${JSON.stringify(masked)}`);
      assert(/^•+/.test(masked.influx_token), "token not masked before Show token");
      await page.click("#reveal-token");
      const before = JSON.parse(await pre.textContent()).influx_token;
      assert(before && !before.includes("•"), "Show token did not reveal it");
      page.once("dialog", (d) => d.accept());
      await page.click(`tr[data-device="${deviceId}"] button.rotate`);
      await page.waitForFunction((old) => {
        const el = document.querySelector("#config-json");
        return el && !el.textContent.includes(old) && el.textContent.includes("influx_token");
      }, before.slice(-12));
      await page.click("#reveal-token");
      const after = JSON.parse(await pre.textContent()).influx_token;
      assert(after && after !== before && !after.includes("•"), "rotate did not show a new token");
      await page.click("#config-area button.secondary"); // Close: no token left on screen for the screenshots
      await pre.waitFor({ state: "detached" });
    });

    await step("write missing data: the bar reaches 100%", async () => {
      await page.click(`tr[data-device="${deviceId}"] button.write-missing`);
      const bar = page.locator(`.progress[data-device="${deviceId}"]`);
      await bar.waitFor();
      const seen = [];
      const deadline = Date.now() + BACKFILL_TIMEOUT_MS;
      let state = "";
      // Bounded by the deadline; samples the bar the way a person watches it.
      while (Date.now() < deadline) {
        state = await bar.getAttribute("data-state");
        const pct = Number(await bar.locator(".bar").getAttribute("data-percent"));
        if (seen[seen.length - 1] !== pct) seen.push(pct);
        if (state === "done" || state === "error") break;
        await page.waitForTimeout(250);
      }
      const detail = await bar.locator(".progress-detail").textContent();
      assert(state === "done", `bar state ${state} (${detail}); percents seen ${seen.join(",")}`);
      assert(seen[seen.length - 1] === 100, `last percent ${seen[seen.length - 1]}`);
      for (let i = 1; i < seen.length; i++) assert(seen[i] >= seen[i - 1], `percent went backwards: ${seen.join(",")}`);
      assert(/written/.test(detail) && /\d+(\.\d)? s|min/.test(detail), `detail lacks points written / elapsed time: ${detail}`);
      console.log(`     percents seen: ${seen.join(" → ")}; ${detail}`);
      await page.waitForTimeout(600); // let the bar's width transition finish before the screenshot
      await shot("write-missing");
    });

    await step(`write missing data for all devices: ${deviceId} is complete, ${secondId} gets its 7 days`, async () => {
      await page.fill("#new-device-id", secondId);
      await page.click("#register");
      await page.waitForSelector(`tr[data-device="${secondId}"]`);
      await page.click("#write-missing-all");
      const bar = page.locator(".progress:not([data-device])").first();
      await bar.waitFor();
      await page.waitForFunction((el) => ["done", "error"].includes(el.getAttribute("data-state")), await bar.elementHandle(), { timeout: BACKFILL_TIMEOUT_MS });
      const state = await bar.getAttribute("data-state");
      const detail = await bar.locator(".progress-detail").textContent();
      assert(state === "done", `all-devices bar state ${state}: ${detail}`);
      assert(Number(await bar.locator(".bar").getAttribute("data-percent")) === 100, "all-devices bar below 100%");
      // Mostly the second device's 10,080 minutes; the first may miss the minute or two the window moved since.
      const m = /([\d,]+) of ([\d,]+) missing points written/.exec(detail);
      const [written, planned] = m ? [m[1], m[2]].map((v) => Number(v.replaceAll(",", ""))) : [NaN, NaN];
      assert(written === planned && planned >= 10_080 && planned <= 10_083, `want all of ~10,080 missing points written: ${detail}`);
    });

    await step("dashboard: five plots and the trace have data and are drawn, gauges filled", async () => {
      await page.click(`tr[data-device="${deviceId}"] a.device-link`);
      await page.waitForSelector("main[data-page=dashboard]");
      await page.click('a[data-range="7d"]');
      await page.waitForFunction(() => location.hash.includes("range=7d"));
      await page.waitForSelector('main[data-page=dashboard][data-range="7d"][data-ready]');
      const ready = await page.getAttribute("main", "data-ready");
      const status = await page.textContent("#dashboard-status");
      assert(ready === "ok", `dashboard not ready: ${status}`);
      for (const f of FIVE) {
        const plot = page.locator(`.plot[data-field="${f}"]`);
        const n = Number(await plot.getAttribute("data-points"));
        assert(n > 0, `${f}: ${n} points`);
        const px = await drawnPixels(plot, COLORS[f]);
        assert(px > 50, `${f}: only ${px} pixels of its series color on the canvas`);
        const last = await page.getAttribute(`.gauge[data-field="${f}"]`, "data-last");
        assert(last !== "" && Number.isFinite(Number(last)), `${f} gauge has no last value`);
      }
      const trace = page.locator("#trace");
      const n = Number(await trace.getAttribute("data-points"));
      assert(n > 0, `trace: ${n} points`);
      const px = await drawnPixels(trace, COLORS.LatLon);
      assert(px > 50, `trace: only ${px} pixels of its color`);
      console.log(`     ${status}`);
      await shot("dashboard");
    });

    await step("range picker: 1h, 1d and 30d show data too", async () => {
      for (const r of ["1h", "1d", "30d"]) {
        await page.click(`a[data-range="${r}"]`);
        await page.waitForSelector(`main[data-page=dashboard][data-range="${r}"][data-ready]`);
        const status = await page.textContent("#dashboard-status");
        assert((await page.getAttribute("main", "data-ready")) === "ok", `${r}: ${status}`);
        for (const f of FIVE) {
          const n = Number(await page.getAttribute(`.plot[data-field="${f}"]`, "data-points"));
          assert(n > 0, `${r}: ${f} has ${n} points (${status})`);
        }
        console.log(`     ${status}`);
      }
    });

    await step(`delete ${deviceId} with its data`, async () => {
      await page.click("#nav-devices");
      await page.waitForSelector(`tr[data-device="${deviceId}"]`);
      await page.click(`tr[data-device="${deviceId}"] button.delete`);
      await page.check("#delete-data");
      await page.click("#delete-confirm");
      await page.waitForSelector(`tr[data-device="${deviceId}"]`, { state: "detached" });
      const res = await page.request.get(`${BASE_URL}/api/devices`, { headers: { Authorization: `Bearer ${key}` } });
      assert(res.status() === 200, `GET /api/devices ${res.status()}`);
      const ids = (await res.json()).map((d) => d.deviceId);
      assert(!ids.includes(deviceId), `${deviceId} still listed`);
      await page.click(`tr[data-device="${secondId}"] button.delete`);
      await page.check("#delete-data");
      await page.click("#delete-confirm");
      await page.waitForSelector(`tr[data-device="${secondId}"]`, { state: "detached" });
    });

    await step("no script errors or CSP violations in the page", async () => {
      assert(pageErrors.length === 0, pageErrors.join("; "));
    });
  } finally {
    if (ctx) await ctx.close().catch(() => {});
    // A failed run must not leave its device behind (404 when the test already deleted it).
    for (const id of [deviceId, secondId]) {
      await fetch(`${BASE_URL}/api/devices/${id}?data=true`, { method: "DELETE", headers: { Authorization: `Bearer ${key}` } }).catch(() => {});
    }
    await rm(profile, { recursive: true, force: true }).catch(() => {});
    if (SCREENSHOTS_DIR && shots.length) {
      await mkdir(SCREENSHOTS_DIR, { recursive: true });
      for (const s of shots) await copyFile(s, path.join(SCREENSHOTS_DIR, path.basename(s)));
    }
  }
}

let code = 0;
try {
  await main();
} catch (e) {
  code = 1;
  if (!results.some((r) => !r.ok)) console.log(`FAIL setup: ${e.message}`);
}
const passed = results.filter((r) => r.ok).length;
console.log(`e2e: ${passed} passed, ${results.length - passed + (code && results.every((r) => r.ok) ? 1 : 0)} failed`);
process.exit(code);
