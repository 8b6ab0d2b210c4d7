// End-to-end test of the dashboard in a real browser (Debian's Chromium driven by playwright-core) against a running
// local API, with a fleet of more than 100 devices bulk-registered through the API, and later BIG_FLEET more.
// Desktop (1400 px) and phone (390 px): the key checked before it is kept, the device list read from the server a
// page at a time (count, sort by id and by last seen, id-prefix search, paging, status filter, a failed refresh; the
// same over the big fleet), results in a panel inside the viewport with focus moved there, one styled confirmation
// for rotate and delete, backfill progress from the job (one job for a repeated start, picked up after a reload), the
// keyboard combobox, honest empty and unknown-device states, adaptive ticks, and axe-core (no serious or critical
// violation) on each view, empty and full. Screenshots go to ARTIFACTS (and SCREENSHOTS_DIR when set).
//
// Env: BASE_URL (http://127.0.0.1:3000), OPERATOR_KEY (or KEYS_FILE, a keys.env with IOT_OPERATOR_KEY=...),
// ARTIFACTS (test-artifacts), SCREENSHOTS_DIR, FLEET (104), BIG_FLEET (10000), BACKFILL_TIMEOUT_MS (240000),
// KEEP_BIG (set: the big fleet is not deleted at the end, for a throwaway API such as run.sh's; a delete a device).
import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import { repo, ARTIFACTS, STEP_TIMEOUT_MS, loopback, assert, results, step, forEach, axe, launch, keepShots } from "./harness.mjs";

const BASE_URL = (process.env.BASE_URL ?? "http://127.0.0.1:3000").replace(/\/$/, "");
const BACKFILL_TIMEOUT_MS = Number(process.env.BACKFILL_TIMEOUT_MS ?? 240_000);
const FLEET = Math.max(100, Number(process.env.FLEET ?? 104));
const DESKTOP = { width: 1400, height: 900 };
const PHONE = { width: 390, height: 844 };
// The series colors of web/src/plots.ts: a drawn plot has pixels of its color on the canvas.
const COLORS = { Temperature: "#c2410c", Humidity: "#1c6fc2", Pressure: "#7048e8", CO2: "#2b8a3e", TVOC: "#c2255c", LatLon: "#364fc7" };
const FIVE = ["Temperature", "Humidity", "Pressure", "CO2", "TVOC"];

loopback({ BASE_URL });

async function operatorKey() {
  if (process.env.OPERATOR_KEY) return process.env.OPERATOR_KEY;
  const file = process.env.KEYS_FILE ?? path.join(repo, ".local/keys.env");
  const text = await readFile(file, "utf8");
  const m = /^(?:export\s+)?IOT_OPERATOR_KEY=["']?([^"'\s]+)/m.exec(text);
  if (!m) throw new Error(`no IOT_OPERATOR_KEY in ${file}`);
  return m[1];
}

// drawnPixels counts canvas pixels within a small distance of the hex color (the series stroke).
async function drawnPixels(locator, hex) {
  return locator.evaluate((el, hex) => {
    const c = el.querySelector("canvas");
    if (!c) return -1;
    const want = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
    const { data } = c.getContext("2d").getImageData(0, 0, c.width, c.height);
    let n = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (data[i + 3] > 200 && Math.abs(data[i] - want[0]) + Math.abs(data[i + 1] - want[1]) + Math.abs(data[i + 2] - want[2]) < 40) n++;
    }
    return n;
  }, hex);
}

// inViewport asserts that an element is entirely inside the viewport (an action's result must be seen).
async function inViewport(page, locator, what) {
  await locator.waitFor({ state: "visible" });
  const b = await locator.boundingBox();
  const vp = page.viewportSize();
  assert(b, `${what}: no bounding box`);
  const ok = b.x >= -0.5 && b.y >= -0.5 && b.x + b.width <= vp.width + 0.5 && b.y + b.height <= vp.height + 0.5;
  assert(ok, `${what} is outside the ${vp.width}x${vp.height} viewport: x=${b.x} y=${b.y} w=${b.width} h=${b.height}`);
}

async function noHorizontalScroll(page, what) {
  const [sw, iw] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  assert(sw <= iw, `${what}: the page scrolls horizontally (${sw} px wide in a ${iw} px window)`);
}

async function focusInside(page, selector) {
  return page.evaluate((sel) => !!document.activeElement?.closest(sel), selector);
}

async function main() {
  const key = await operatorKey();
  await mkdir(ARTIFACTS, { recursive: true });
  const run = `e2e${Date.now().toString(36)}`;
  const fleet = Array.from({ length: FLEET }, (_, i) => `${run}-f${i + 1}`);
  const deviceX = `${run}-x`;
  const emptyId = `${run}-empty`;
  const created = [...fleet, deviceX, emptyId];
  const bigCreated = []; // the 10,000 of the fleet-sized step (no data: deleted without the data step)
  const shots = [];
  const api = async (method, p, body) => {
    const res = await fetch(`${BASE_URL}${p}`, {
      method, headers: { Authorization: `Bearer ${key}`, ...(body ? { "Content-Type": "application/json" } : {}) }, body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, data: text ? JSON.parse(text) : null };
  };
  let browser;
  try {
    const chrome = await launch();
    browser = chrome.browser;
    const { pageErrors } = chrome;
    const newPage = (viewport) => chrome.newPage(viewport, { timezoneId: "Europe/Prague" });
    // A full-page shot is cut at `maxHeight` px (a list of 50 cards would be a very long picture).
    const shotOf = (page) => async (name, fullPage = false, maxHeight = 0) => {
      const file = path.join(ARTIFACTS, `ui-${name}.png`);
      const clip = maxHeight ? { x: 0, y: 0, width: page.viewportSize().width, height: Math.min(maxHeight, await page.evaluate(() => document.documentElement.scrollHeight)) } : undefined;
      await page.screenshot({ path: file, fullPage: fullPage || !!clip, clip });
      shots.push(file);
    };
    const useKey = async (page) => {
      await page.fill("#operator-key", key);
      await page.click("#save-key");
      await page.waitForSelector("#key-note.ok");
      await page.click("#nav-devices"); // the home page is the fleet overview (overview.e2e.mjs)
      await page.waitForSelector("main[data-page=devices][data-loaded]:not([data-loaded=''])");
    };
    const rows = (page) => page.locator("table.devices tbody tr[data-device]");
    const pageIds = (page) => rows(page).evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-device")));
    const openMenu = async (page, id) => {
      const btn = page.locator(`tr[data-device="${id}"] button.menu-button`);
      await btn.scrollIntoViewIfNeeded();
      await btn.click();
      const menu = page.locator(".menu");
      await inViewport(page, menu, `the actions menu of ${id}`);
      return menu;
    };
    // listed waits until the rows answer the view `want` (search q, filter, sort, page: what the page marks its rows
    // with once they are read), since the server searches, filters, sorts and pages.
    const listed = async (page, want) => {
      const sel = Object.entries(want).map(([k, v]) => `[data-${k}=${JSON.stringify(String(v))}]`).join("");
      await page.waitForSelector(`table.devices tbody${sel}`, { state: "attached" });
    };
    // as an operator does: the focus moves to the select (rows are not redrawn under a focus inside them)
    const sortBy = async (page, v) => {
      await page.focus("#device-sort");
      await page.selectOption("#device-sort", v);
    };
    const search = async (page, q) => {
      await page.fill("#device-search", q);
      await listed(page, { q, page: 0 });
    };

    // ---------------------------------------------------------------- desktop
    const page = await newPage(DESKTOP);
    const shot = shotOf(page);

    await step("page loads with hashed, immutable assets; without a key it asks for one", async () => {
      const res = await page.goto(`${BASE_URL}/`, { waitUntil: "load" });
      assert(res.status() === 200, `GET / status ${res.status()}`);
      const src = await page.locator("script[type=module]").getAttribute("src");
      assert(/^\/assets\/main-[A-Z0-9]{8}\.js$/.test(src), `script src ${src} is not a hashed asset`);
      const js = await page.request.get(`${BASE_URL}${src}`, { headers: { "Accept-Encoding": "gzip" } });
      assert(/immutable/.test(js.headers()["cache-control"] ?? ""), `asset cache-control ${js.headers()["cache-control"]}`);
      await page.waitForSelector("main[data-page=key]");
      assert((await page.title()) === "Operator key needed · IoT Center", `title ${await page.title()}`);
      await axe(page, "key prompt");
    });

    await step("a wrong operator key is checked against the API and refused, not kept", async () => {
      await page.fill("#operator-key", `${key}-wrong`);
      await page.click("#save-key");
      await page.waitForSelector("#key-note.error");
      const note = await page.textContent("#key-note");
      assert(/refused/.test(note), `key note: ${note}`);
      assert((await page.evaluate(() => sessionStorage.getItem("iot-center.operatorKey"))) === null, "a refused key was kept");
      assert((await page.getAttribute("#operator-key", "aria-invalid")) === "true", "the key field is not marked invalid");
    });

    await step("the right key is accepted and kept for the tab; the empty device list says so", async () => {
      await useKey(page);
      assert((await page.evaluate(() => sessionStorage.getItem("iot-center.operatorKey"))) === key, "the key is not in sessionStorage");
      assert((await page.title()) === "Devices · IoT Center", `title ${await page.title()}`);
      const n = Number(await page.getAttribute("main", "data-loaded"));
      if (n === 0) {
        assert(/No devices registered yet/.test(await page.textContent("table.devices tbody")), "no empty-list message");
        await axe(page, "devices (empty)");
      } else console.log(`     the API already holds ${n} devices; the empty list is not checked`);
    });

    await step(`a fleet of ${FLEET} devices registered in one bulk request; a repeated one answers existing`, async () => {
      const t0 = Date.now();
      const r = await api("POST", "/api/devices", { deviceIds: fleet });
      assert(r.status === 200 && r.data.created === FLEET, `bulk registration: ${r.status} ${JSON.stringify(r.data).slice(0, 300)}`);
      assert(r.data.devices.every((d, i) => d.deviceId === fleet[i] && d.outcome === "created" && d.token), "a created device without its credential");
      const again = await api("POST", "/api/devices", { deviceIds: fleet.slice(0, 3) });
      assert(again.status === 200 && again.data.existing === 3 && again.data.devices.every((d) => d.outcome === "existing" && !d.token),
        `a repeated request: ${JSON.stringify(again.data)}`);
      console.log(`     ${FLEET} registrations in one request: ${Date.now() - t0} ms`);
    });

    // The store orders ids byte by byte (what a sort key does), so the list does too.
    const byteOrder = (ids) => [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    await step("the list: the server pages (50 a request), counts, sorts by id and searches an id prefix", async () => {
      const calls = [];
      const onReq = (r) => new URL(r.url()).pathname === "/api/devices" && calls.push(new URL(r.url()).search);
      page.on("request", onReq);
      await page.click("#refresh");
      await page.waitForFunction((n) => Number(document.querySelector("main").dataset.loaded) >= n, FLEET);
      const total = Number(await page.getAttribute("main", "data-loaded"));
      const count = await page.textContent("#device-count");
      assert(count.startsWith(`${total.toLocaleString("en-US")} devices`), `count: ${count}`);
      assert((await rows(page).count()) === 50, `page 1 shows ${await rows(page).count()} rows`);
      const sorted = byteOrder(fleet);
      await search(page, `${run}-f`);
      let ids = await pageIds(page);
      assert(ids.join(",") === sorted.slice(0, 50).join(","), `page 1: ${ids.slice(0, 12).join(",")}`);
      assert(/Page 1(?!\d)/.test(await page.textContent(".pager")) && !/ of /.test(await page.textContent(".pager")),
        `a search's pager claims a total: ${await page.textContent(".pager")}`);
      await page.click("#page-next");
      await listed(page, { q: `${run}-f`, page: 1 });
      ids = await pageIds(page);
      assert(ids.join(",") === sorted.slice(50, 100).join(","), `page 2: ${ids.slice(0, 12).join(",")}`);
      assert(/Page 2(?!\d)/.test(await page.textContent(".pager")), await page.textContent(".pager"));
      await page.click("#page-next");
      await listed(page, { q: `${run}-f`, page: 2 });
      ids = await pageIds(page);
      assert(ids.join(",") === sorted.slice(100).join(","), `page 3: ${ids.join(",")}`);
      assert(await page.isDisabled("#page-next"), "Next is enabled on the last page");
      await page.click("#page-prev");
      await listed(page, { q: `${run}-f`, page: 1 });
      assert((await pageIds(page))[0] === sorted[50], `back on page 2: ${(await pageIds(page))[0]}`);
      // by last seen, newest first: online, then late, then silent; none of the fleet has written, so by id reversed
      await sortBy(page, "seen-new");
      await listed(page, { q: `${run}-f`, sort: "seen-new", page: 0 });
      ids = await pageIds(page);
      assert(ids.join(",") === [...sorted].reverse().slice(0, 50).join(","), `last seen, newest first: ${ids.slice(0, 6).join(",")}`);
      await sortBy(page, "id");
      await search(page, `${run}-f10`);
      const want = sorted.filter((id) => id.startsWith(`${run}-f10`));
      ids = await pageIds(page);
      assert(ids.join(",") === want.join(","), `search ${run}-f10 shows ${ids.join(",")}`);
      assert(new RegExp(`matches for “${run}-f10”`).test(await page.textContent("#device-count")), await page.textContent("#device-count"));
      await search(page, `${run}-nomatch`);
      assert((await rows(page).count()) === 0 && /No device matches/.test(await page.textContent("table.devices tbody")),
        `a search without a match: ${await page.textContent("table.devices tbody")}`);
      page.off("request", onReq);
      assert(calls.length > 0 && calls.every((c) => /limit=50\b/.test(c)), `the list read more than a page: ${calls.join(" ")}`);
      assert(calls.some((c) => /[?&]q=/.test(c)) && calls.some((c) => /after=/.test(c)), `search and paging not done by the server: ${calls.join(" ")}`);
      console.log(`     list requests: ${calls.join(" ")}`);
      await search(page, "");
    });

    await step("status column: silent devices are one click away", async () => {
      // the status filters wait for the first fleet-health run (the local API runs it 5 s after it starts)
      for (let i = 0; i < 60 && !(await api("GET", "/api/devices/counts")).data.asOf; i++) await new Promise((r) => setTimeout(r, 1000));
      const firstPage = (await api("GET", "/api/devices?limit=1000")).data;
      assert(firstPage.every((d) => ["online", "late", "silent"].includes(d.status)), "the API reports no status");
      const { silent } = (await api("GET", "/api/devices/counts")).data;
      await page.click('.chip[data-filter="silent"]');
      await listed(page, { filter: "silent", page: 0 });
      assert((await page.getAttribute('.chip[data-filter="silent"]', "aria-pressed")) === "true", "silent filter not pressed");
      const states = await rows(page).evaluateAll((trs) => trs.map((tr) => tr.dataset.status));
      assert(states.every((s) => s === "silent"), `silent filter shows ${[...new Set(states)].join(",")}`);
      assert(new RegExp(`${silent.toLocaleString("en-US")} match`).test(await page.textContent("#device-count")), `count with the silent filter: ${await page.textContent("#device-count")} (API: ${silent} silent)`);
      assert(/Silent/.test(await rows(page).first().textContent()), "the status is not written out (colour alone)");
      await page.click('.chip[data-filter="all"]');
    });

    let token1 = "";
    await step(`register ${deviceX}: the result opens in a panel in view, focus moved, token shown once`, async () => {
      await page.fill("#new-device-id", deviceX);
      await page.click("#register");
      const panel = page.locator("dialog.panel[open]");
      await inViewport(page, panel, "the registration panel");
      assert(await focusInside(page, "dialog.panel"), "focus did not move into the panel");
      const name = await panel.evaluate((d) => document.getElementById(d.getAttribute("aria-labelledby"))?.textContent);
      assert(name === `Registered ${deviceX}`, `the panel is named ${name}`);
      await page.click("#reveal-token");
      token1 = JSON.parse(await page.textContent("#config-json")).influx_token;
      assert(token1 && !token1.includes("•"), "Show token did not reveal it");
      // A gateway credential is shown once; a direct-mode InfluxDB token can be read again, and the note says which.
      const note = await page.textContent("#token-note");
      assert(token1.startsWith("iotc_") ? /shown once/.test(note) : /shows it again/.test(note), `token note for ${token1.slice(0, 5)}…: ${note}`);
      await page.keyboard.press("Escape");
      await panel.waitFor({ state: "detached" });
      assert(await focusInside(page, "#register-form"), "focus did not return to the form");
    });

    await step("rotate from the row menu: named actions, a styled confirmation, the new token in a panel", async () => {
      await search(page, deviceX);
      const named = await page.getAttribute(`tr[data-device="${deviceX}"] a.primary-action`, "aria-label");
      assert(named === `Dashboard of ${deviceX}`, `primary action named ${named}`);
      const menu = await openMenu(page, deviceX);
      const labels = await menu.locator("button").evaluateAll((bs) => bs.map((b) => b.getAttribute("aria-label")));
      assert(labels.every((l) => l.endsWith(`of ${deviceX}`)), `menu items not named with the device: ${labels.join(", ")}`);
      assert(await menu.locator("button.rotate.danger").count() === 1 && await menu.locator("button.delete.danger").count() === 1, "rotate/delete not styled as destructive");
      await menu.locator("button.rotate").click();
      const dlg = page.locator("dialog.confirm[open]");
      await inViewport(page, dlg, "the rotate confirmation");
      assert(/stops working within 60 s/.test(await dlg.textContent()), "the confirmation does not say what rotate does");
      await page.click("#confirm-ok");
      const panel = page.locator("dialog.panel[open]");
      await page.waitForFunction((id) => document.querySelector("dialog.panel[open] h2")?.textContent === `New token for ${id}`, deviceX);
      await inViewport(page, panel, "the rotation panel");
      assert(await focusInside(page, "dialog.panel"), "focus did not move into the panel");
      await page.click("#reveal-token");
      const token2 = JSON.parse(await page.textContent("#config-json")).influx_token;
      assert(token2 && token2 !== token1, "rotate did not show a new token");
      await page.keyboard.press("Escape");
      await panel.waitFor({ state: "detached" });
    });

    await step("the configuration view (reached by keyboard) says the token policy and offers rotate", async () => {
      await page.focus(`tr[data-device="${deviceX}"] button.menu-button`);
      await page.keyboard.press("Enter");
      assert((await page.getAttribute(`tr[data-device="${deviceX}"] button.menu-button`, "aria-expanded")) === "true", "Enter did not open the menu");
      assert(await page.evaluate(() => document.activeElement?.dataset.action === "config"), "focus is not on the first menu item");
      await page.keyboard.press("ArrowDown");
      assert(await page.evaluate(() => document.activeElement?.dataset.action === "write-missing"), "ArrowDown did not move to the next item");
      await page.keyboard.press("Escape");
      assert(await focusInside(page, `tr[data-device="${deviceX}"] button.menu-button`), "Escape did not give focus back to the menu button");
      await page.keyboard.press("Enter");
      await page.keyboard.press("Enter"); // Configuration, the first item
      const panel = page.locator("dialog.panel[open]");
      await inViewport(page, panel, "the configuration panel");
      assert(/token|credential/.test(await page.textContent("#token-note")), "no word on the token");
      assert(await page.locator("#panel-rotate").isVisible(), "no rotate in the configuration view");
      const cfg = JSON.parse(await page.textContent("#config-json"));
      assert(cfg.id === deviceX, `config of ${cfg.id}`);
      await axe(page, "configuration panel");
      await page.keyboard.press("Escape");
      await panel.waitFor({ state: "detached" });
      await search(page, "");
    });

    // Backfill: POSTs counted, the bar sampled the way a person watches it.
    const posts = [];
    page.on("request", (r) => {
      if (r.method() === "POST" && /\/write-missing$/.test(new URL(r.url()).pathname)) posts.push(r.url());
    });
    const watch = async (selector, what) => {
      const seen = [];
      const deadline = Date.now() + BACKFILL_TIMEOUT_MS;
      let state = "";
      while (Date.now() < deadline) {
        const s = await page.evaluate((sel) => {
          const el = document.querySelector(sel);
          if (!el) return null;
          const label = el.querySelector(".bar-label").textContent;
          const fact = (k) => el.querySelector(`[data-fact="${k}"]`)?.textContent ?? "";
          return { state: el.dataset.state, pct: el.querySelector(".bar").dataset.percent, label, written: fact("Points written"), left: fact("Time left"), devices: fact("Devices done"), chunks: fact("Chunks"), note: el.querySelector(".progress-note").textContent };
        }, selector);
        assert(s, `${what}: the progress view is gone`);
        state = s.state;
        if (s.state === "planning") assert(s.pct === "" && /Planning/.test(s.label), `${what}: planning shown as ${s.label}`);
        if (s.pct !== "" && s.written) {
          // The percent shown is points written / points planned.
          const [w, p] = (/([\d,]+) of ([\d,]+)/.exec(s.written) ?? []).slice(1).map((v) => Number(v.replaceAll(",", "")));
          if (p > 0) assert(Math.abs(Number(s.pct) - (100 * w) / p) < 0.05, `${what}: ${s.pct} % shown for ${s.written}`);
        }
        if (!seen.length || seen[seen.length - 1].pct !== s.pct || seen[seen.length - 1].state !== s.state) seen.push(s);
        if (state === "done" || state === "failed") break;
        await page.waitForTimeout(200);
      }
      const last = seen[seen.length - 1];
      assert(state === "done", `${what}: state ${state}: ${JSON.stringify(last)}`);
      assert(Number(last.pct) === 100, `${what}: last percent ${last.pct}`);
      const pcts = seen.filter((s) => s.pct !== "").map((s) => Number(s.pct));
      for (let i = 1; i < pcts.length; i++) assert(pcts[i] >= pcts[i - 1], `${what}: percent went backwards: ${pcts.join(",")}`);
      assert(last.left === "none", `${what}: time left at the end: ${last.left}`);
      console.log(`     ${what}: ${seen.map((s) => (s.pct === "" ? s.state : `${Number(s.pct).toFixed(1)}%`)).join(" → ")}; ${last.written}; devices: ${last.devices || "—"}; chunks: ${last.chunks || "—"}`);
      return last;
    };

    await step(`write missing data for ${deviceX}: asks with its own window, progress in a panel, a repeated start follows the same job`, async () => {
      await search(page, deviceX);
      let menu = await openMenu(page, deviceX);
      await menu.locator("button.write-missing").click();
      const ask = page.locator("dialog.confirm[open]");
      await inViewport(page, ask, "the backfill confirmation");
      await page.selectOption("#row-days", "1");
      assert(/Window: .* to .*at most 1,440 points/.test(await page.textContent("#backfill-plan")), `the row's window: ${await page.textContent("#backfill-plan")}`);
      await page.selectOption("#row-days", "7");
      assert(/at most 10,080 points/.test(await page.textContent("#backfill-plan")), `the row's window: ${await page.textContent("#backfill-plan")}`);
      assert(/generated/.test(await ask.textContent()), "the confirmation does not say the values are generated");
      assert(posts.length === 0, `${posts.length} POSTs before the confirmation`);
      await page.click("#confirm-ok");
      const panel = page.locator("dialog.panel[open]");
      await inViewport(page, panel, "the backfill panel");
      assert(await focusInside(page, "dialog.panel"), "focus did not move into the backfill panel");
      await page.keyboard.press("Escape");
      await panel.waitFor({ state: "detached" });
      const running = await page.evaluate(() => sessionStorage.getItem("iot-center.jobs"));
      menu = await openMenu(page, deviceX);
      await menu.locator("button.write-missing").click();
      // a finished job is not followed: the second start then asks again, for a new one
      await page.waitForSelector("dialog.confirm[open], dialog.panel[open]");
      if (await ask.count()) {
        assert(!running || !(await page.evaluate(() => sessionStorage.getItem("iot-center.jobs"))), "a running job was not followed");
        await page.click("#confirm-ok");
      }
      await inViewport(page, panel, "the backfill panel (second start)");
      if (running) assert(/already running|has finished/.test(await panel.textContent()), "a second start does not say it follows the running job");
      const last = await watch(`dialog.panel[open] .progress`, deviceX);
      assert(posts.length === 1 || !running, `${posts.length} POSTs for one device and window: ${posts.join(", ")}`);
      assert(last.devices === "1 of 1" && /^\d+ of \d+, 0 failed$/.test(last.chunks), `devices ${last.devices}, chunks ${last.chunks}`);
      const [w, p] = (/([\d,]+) of ([\d,]+)/.exec(last.written) ?? []).slice(1).map((v) => Number(v.replaceAll(",", "")));
      assert(w === p && p >= 10_000 && p <= 10_083, `want the ~10,080 missing minutes of 7 days written: ${last.written}`);
      await page.waitForTimeout(500); // the bar's width transition, before the screenshot
      await shot("write-missing");
      await page.keyboard.press("Escape");
      await search(page, "");
    });

    await step("write missing data for all devices: the job is picked up again after a reload", async () => {
      posts.length = 0;
      await page.selectOption("#days", "1");
      await page.click("#write-missing-all");
      // it asks first: how many devices, at most how many points, which window; Cancel starts nothing
      const ask = page.locator("dialog.confirm[open]");
      await inViewport(page, ask, "the all-devices confirmation");
      const total = Number(await page.getAttribute("main", "data-loaded"));
      const plan = await page.textContent("#backfill-plan");
      assert(new RegExp(`all ${total.toLocaleString("en-US")} devices`).test(await ask.textContent()), `the confirmation does not count the devices: ${await ask.textContent()}`);
      assert(new RegExp(`last 1 day, .* to .*at most ${(total * 1440).toLocaleString("en-US")} points`).test(plan), `plan: ${plan}`);
      await page.click("#confirm-cancel");
      await ask.waitFor({ state: "detached" });
      await page.waitForTimeout(500);
      assert(posts.length === 0, `${posts.length} POSTs after Cancel`);
      await page.click("#write-missing-all");
      await page.click("#confirm-ok");
      const panel = page.locator("dialog.panel[open]");
      await inViewport(page, panel, "the all-devices backfill panel");
      await page.waitForFunction(() => {
        const s = JSON.parse(sessionStorage.getItem("iot-center.jobs") ?? "[]");
        return s.length === 0 || s.some((j) => j.jobId || j.from);
      }, null, { timeout: BACKFILL_TIMEOUT_MS });
      const saved = await page.evaluate(() => sessionStorage.getItem("iot-center.jobs"));
      assert(!saved || JSON.parse(saved).every((j) => j.jobId), `a running backfill is kept without its job id: ${saved}`);
      if (saved) {
        await page.reload({ waitUntil: "load" });
        await page.waitForSelector("main[data-page=devices]");
        const job = page.locator('.job[data-key="all:1"]');
        await job.waitFor();
        console.log(`     after the reload: ${await job.textContent()}`);
        assert(posts.length === 1, `${posts.length} POSTs for the all-devices backfill`);
        await job.locator("button").click();
      } else console.log("     the backfill ended before the reload could be tried");
      const last = await watch(`dialog.panel[open] .progress`, "all devices");
      const [d, n] = (/([\d,]+) of ([\d,]+)/.exec(last.devices) ?? []).slice(1).map((v) => Number(v.replaceAll(",", "")));
      assert(d === n && n >= FLEET, `devices done: ${last.devices}`);
      await page.keyboard.press("Escape");
      await page.selectOption("#days", "7");
    });

    await step("a fleet backfill can be cancelled: the job stops, what was written stays and is reported", async () => {
      await page.selectOption("#days", "14");
      await page.click("#write-missing-all");
      await page.click("#confirm-ok");
      const progress = page.locator("dialog.panel[open] .progress");
      await progress.waitFor();
      await page.waitForSelector("dialog.panel[open] #cancel-job:not([disabled])");
      await page.click("dialog.panel[open] #cancel-job");
      const ask = page.locator("dialog.confirm[open]");
      await inViewport(page, ask, "the cancel confirmation");
      await page.click("#confirm-ok");
      await page.waitForSelector('dialog.panel[open] .progress[data-state="cancelled"]', { timeout: BACKFILL_TIMEOUT_MS });
      const written = await progress.locator('[data-fact="Points written"]').textContent();
      const [w, p] = (/([\d,]+) of ([\d,]+)/.exec(written) ?? []).slice(1).map((v) => Number(v.replaceAll(",", "")));
      assert(w <= p, `points written ${written}: more than planned`);
      assert(/Cancelled/.test(await progress.locator(".bar-label").textContent()) && /stay/.test(await progress.locator(".progress-note").textContent()), "the cancelled job does not say so");
      assert(await page.locator("dialog.panel[open] #cancel-job").isHidden(), "Cancel is still offered for a cancelled job");
      const saved = JSON.parse((await page.evaluate(() => sessionStorage.getItem("iot-center.jobs"))) ?? "[]");
      assert(!saved.some((j) => j.key === "all:14"), "the cancelled job is still kept as running");
      const jobs = await page.evaluate(() => [...document.querySelectorAll('.job[data-key="all:14"] strong')].map((e) => e.textContent));
      assert(jobs.every((t) => /Cancelled/.test(t)), `the jobs list shows ${jobs.join(", ")}`);
      // the API agrees: the job reads cancelled, and its count of written points is the one shown
      const path = await page.evaluate(() => performance.getEntriesByType("resource").map((e) => new URL(e.name).pathname).filter((p) => /\/api\/write-missing\/jobs\/[^/]+\/cancel$/.test(p)).pop());
      assert(path, "no cancel request was sent");
      const job = await api("GET", path.replace(/\/cancel$/, ""));
      assert(job.data.state === "cancelled" && job.data.pointsWritten <= job.data.pointsPlanned, `the job after the cancel: ${JSON.stringify(job.data)}`);
      console.log(`     cancelled: ${written} shown; the API says ${job.data.pointsWritten} of ${job.data.pointsPlanned}`);
      await page.keyboard.press("Escape");
      await page.selectOption("#days", "7");
    });

    await step("the failed refresh keeps the last list, with a banner", async () => {
      const before = await rows(page).count();
      await page.route("**/api/devices?*", (r) => r.abort("connectionrefused"));
      await page.click("#refresh");
      await page.locator("#list-banner").waitFor({ state: "visible" });
      await page.waitForTimeout(1500); // a read started earlier (a finished backfill refreshes the list) must not hide it
      const banner = await page.textContent("#list-banner");
      assert(/Refresh failed/.test(banner) && (await page.locator("#list-banner").isVisible()), `banner: ${banner}`);
      assert((await rows(page).count()) === before, `the list lost rows: ${before} → ${await rows(page).count()}`);
      await page.unroute("**/api/devices?*");
      await page.click("#refresh");
      await page.locator("#list-banner").waitFor({ state: "hidden" });
      await axe(page, "devices (full)");
    });

    await step("the list refreshes itself and says as of when; a disabled pager button looks disabled", async () => {
      const first = await page.getAttribute("#list-as-of", "data-as-of");
      assert(first && /^as of \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/.test(await page.textContent("#list-as-of")), `as of: ${await page.textContent("#list-as-of")}`);
      await page.waitForFunction((t) => document.querySelector("#list-as-of")?.dataset.asOf > t, first, { timeout: 45_000 });
      console.log(`     as of ${first} → ${await page.getAttribute("#list-as-of", "data-as-of")} without a click`);
      const bg = (sel) => page.$eval(sel, (b) => `${b.disabled} ${getComputedStyle(b).backgroundColor} ${getComputedStyle(b).borderStyle}`);
      const [prev, next] = [await bg("#page-prev"), await bg("#page-next")];
      assert(prev.startsWith("true") && next.startsWith("false") && prev.slice(5) !== next.slice(5), `disabled and enabled pager buttons look alike: ${prev} / ${next}`);
    });

    const gapId = `${run}-gap`;
    created.push(gapId);
    await step("a device's own data with a two-day gap: the line breaks there, the 7-day axis spans 7 days, the exact last seen is on the row", async () => {
      const r = await api("POST", `/api/devices/${gapId}`);
      assert(r.status === 201, `register ${gapId}: ${r.status}`);
      const cfg = r.data;
      const now = Math.floor(Date.now() / 1000);
      const lines = [];
      for (const start of [now - 4 * 86400, now - 86400]) {
        for (let m = 0; m < 120; m++) lines.push(`environment Temperature=${20 + (m % 10)},Humidity=40,Pressure=1011.5,CO2=600i,TVOC=300i ${start + m * 60}`);
      }
      const q = new URLSearchParams({ org: cfg.influx_org, bucket: cfg.influx_bucket, precision: "s" });
      const w = await fetch(`${cfg.influx_url.replace(/\/$/, "")}/api/v2/write?${q}`, { method: "POST", headers: { Authorization: `Token ${cfg.influx_token}` }, body: lines.join("\n") });
      assert(w.status === 204, `the device's write: ${w.status} ${await w.text()}`);
      await page.click("#refresh");
      await search(page, gapId);
      const exact = page.locator(`tr[data-device="${gapId}"] time.seen .exact`);
      await exact.waitFor();
      assert((await exact.isVisible()) && /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/.test(await exact.textContent()), `exact last seen: ${await exact.textContent()}`);
      await search(page, "");
      await page.goto(`${BASE_URL}/#/dashboard/${gapId}?range=7d`);
      await page.waitForSelector('main[data-page=dashboard][data-range="7d"][data-ready]');
      const plot = page.locator('.plot[data-field="Temperature"]');
      const [pts, gen, breaks] = await Promise.all(["data-points", "data-generated", "data-breaks"].map((a) => plot.getAttribute(a)));
      assert(Number(pts) > 0 && Number(gen) === 0 && Number(breaks) >= 1, `points ${pts}, generated ${gen}, line breaks ${breaks}: want the line broken across the gap`);
      const span = Number(await plot.getAttribute("data-x-max")) - Number(await plot.getAttribute("data-x-min"));
      assert(Math.abs(span - 7 * 86400) <= 1, `the 7-day x axis spans ${span} s`);
      assert((await drawnPixels(plot, COLORS.Temperature)) > 20, "the device's line is not drawn");
    });

    await step("a stale key: one clear message, what needs the key disabled", async () => {
      await page.click("#nav-devices");
      await page.waitForSelector("main[data-page=devices][data-loaded]:not([data-loaded=''])");
      await page.evaluate(() => sessionStorage.setItem("iot-center.operatorKey", "stale-key-e2e"));
      await page.click("#refresh");
      await page.waitForSelector("main[data-key-refused]");
      assert(/refused the operator key/.test(await page.textContent("#list-banner")), `banner: ${await page.textContent("#list-banner")}`);
      for (const sel of ["#register", "#write-missing-all"]) assert(await page.locator(sel).isDisabled(), `${sel} is enabled with a refused key`);
      assert((await page.locator("button.menu-button:not([disabled])").count()) === 0, "row actions are enabled with a refused key");
      await page.goto(`${BASE_URL}/#/dashboard/${fleet[0]}?range=1d`);
      await page.waitForSelector('main[data-page=dashboard][data-ready="refused"]');
      const text = await page.textContent("main");
      assert((text.match(/refused|403|401/g) ?? []).length === 1, `want one message: ${text}`);
      await page.evaluate((k) => sessionStorage.setItem("iot-center.operatorKey", k), key);
      await page.goto(`${BASE_URL}/#/devices`);
      await page.waitForFunction(() => !document.querySelector("main").hasAttribute("data-key-refused") && document.querySelector("main").dataset.loaded);
      assert(!(await page.locator("#register").isDisabled()), "Register stays disabled with a valid key");
    });

    await step("dashboard: the combobox opens a device on choice, not on each key", async () => {
      await page.click("#nav-dashboard");
      // The bare Dashboard link opens the first device.
      await page.waitForFunction(() => /^#\/dashboard\/[^?]+/.test(location.hash));
      await page.waitForSelector("main[data-page=dashboard][data-ready]:not([data-ready=empty])");
      const measured = [];
      const searched = [];
      const onReq = (r) => {
        if (/\/measurements/.test(r.url())) measured.push(r.url());
        if (new URL(r.url()).pathname === "/api/devices") searched.push(new URL(r.url()).search);
      };
      page.on("request", onReq);
      const before = await page.evaluate(() => location.hash);
      await page.click("#device-picker");
      await page.keyboard.type(`${run}-x`, { delay: 30 });
      // the server is asked for the ids starting with the text once the typing pauses, not once per key
      await page.waitForSelector('#device-picker[aria-expanded="true"]');
      const typed = `${run}-x`;
      assert(searched.length >= 1 && searched.length <= typed.length / 3 && searched.at(-1).includes(`q=${typed}`),
        `the picker's reads for ${typed.length} keys: ${searched.join(" ")}`);
      assert((await page.evaluate(() => location.hash)) === before && measured.length === 0, `typing loaded something: ${measured.join(", ")}`);
      await page.keyboard.press("ArrowDown");
      const active = await page.getAttribute("#device-picker", "aria-activedescendant");
      assert(active && (await page.textContent(`#${active}`)).startsWith(deviceX), `active option ${active}`);
      await page.keyboard.press("Enter");
      await page.waitForFunction((id) => location.hash.startsWith(`#/dashboard/${id}`), deviceX);
      page.off("request", onReq);
    });

    await step("dashboard, full: plots drawn, gauges read, status line and ticks honest, one zone, axe", async () => {
      await page.click('a[data-range="7d"]');
      await page.waitForSelector('main[data-page=dashboard][data-range="7d"][data-ready]');
      const status = await page.textContent("#dashboard-status");
      assert((await page.getAttribute("main", "data-ready")) === "ok", `dashboard not ready: ${status}`);
      assert((await page.getAttribute('a[data-range="7d"]', "aria-current")) === "true", "the chosen range is not marked for assistive tech");
      assert((await page.textContent('a[data-range="7d"]')).includes("✓"), "the chosen range is shown by colour alone");
      assert(/times in UTC/.test(status), `status names no zone: ${status}`);
      assert((await page.title()).startsWith(`${deviceX}, last 7 days`), `title ${await page.title()}`);
      // deviceX never wrote: every point is generated, drawn dashed, and can be hidden
      for (const f of FIVE) {
        const plot = page.locator(`.plot[data-field="${f}"]`);
        assert(Number(await plot.getAttribute("data-generated")) > 0, `${f}: no generated points`);
        assert(Number(await plot.getAttribute("data-points")) === 0, `${f}: generated points counted as the device's`);
        const px = await drawnPixels(plot, COLORS[f]);
        assert(px > 50, `${f}: only ${px} pixels of its series color on the canvas`);
        const last = await page.getAttribute(`.gauge[data-field="${f}"]`, "data-last");
        assert(last !== "" && Number.isFinite(Number(last)), `${f} gauge has no last value`);
      }
      const trace = page.locator("#trace");
      assert(Number(await trace.getAttribute("data-points")) > 0, "trace: no points");
      assert((await drawnPixels(trace, COLORS.LatLon)) > 50, "trace not drawn");
      for (const axis of [1, 2]) {
        const ticks = (await page.getAttribute("#trace", `data-ticks-${axis === 1 ? 0 : 1}`)) ?? "";
        const labels = ticks.split("|").filter(Boolean);
        assert(labels.length > 1 && new Set(labels).size === labels.length, `Lat/Lon tick labels repeat: ${ticks}`);
      }
      assert(/generated/.test(await page.textContent("#generated-note")) && /generated points \(dashed\)/.test(status), `the dashboard does not say which points are generated: ${status}`);
      await page.uncheck("#show-generated");
      const hidden = await drawnPixels(page.locator('.plot[data-field="Temperature"]'), COLORS.Temperature);
      assert(hidden < 5, `hidden generated points still draw ${hidden} pixels`);
      await page.check("#show-generated");
      assert((await drawnPixels(page.locator('.plot[data-field="Temperature"]'), COLORS.Temperature)) > 50, "generated points not drawn again");
      console.log(`     ${status}; Lon ticks ${await page.getAttribute("#trace", "data-ticks-0")}`);
      await axe(page, "dashboard (full)");
      await shot("dashboard", true);
    });

    await step("range picker: 1h says one point per minute, 30d shows data, the x axis spans the range", async () => {
      const spans = { "1h": 3600, "1d": 86400, "30d": 30 * 86400 };
      for (const r of ["1h", "1d", "30d"]) {
        await page.click(`a[data-range="${r}"]`);
        await page.waitForSelector(`main[data-page=dashboard][data-range="${r}"][data-ready]`);
        const status = await page.textContent("#dashboard-status");
        assert((await page.getAttribute("main", "data-ready")) === "ok", `${r}: ${status}`);
        if (r === "1h") assert(/one per minute/.test(status) && !/5s|5 s/.test(status), `1h status: ${status}`);
        const plot = page.locator('.plot[data-field="Temperature"]');
        const span = Number(await plot.getAttribute("data-x-max")) - Number(await plot.getAttribute("data-x-min"));
        assert(Math.abs(span - spans[r]) <= 1, `${r}: the x axis spans ${span} s, want ${spans[r]}`);
        for (const f of FIVE) {
          const plot = page.locator(`.plot[data-field="${f}"]`);
          assert(Number(await plot.getAttribute("data-points")) + Number(await plot.getAttribute("data-generated")) > 0, `${r}: ${f} has no points (${status})`);
        }
        const labels = ((await page.getAttribute('.plot[data-field="Temperature"]', "data-ticks-0")) ?? "").split("|").filter(Boolean);
        assert(labels.length > 1 && new Set(labels).size === labels.length, `${r}: time tick labels repeat: ${labels.join(", ")}`);
        const pressure = ((await page.getAttribute('.plot[data-field="Pressure"]', "data-ticks-1")) ?? "").split("|").filter(Boolean);
        assert(pressure.every((l) => /^\d{1,3}(,\d{3})*(\.\d+)?$/.test(l)), `${r}: Pressure tick labels ${pressure.join(", ")}`);
        console.log(`     ${status}`);
      }
    });

    await step("dashboard, empty: 'No data in this range' in each plot, gauges without a reading, axe", async () => {
      const r = await api("POST", `/api/devices/${emptyId}`);
      assert(r.status === 201, `register ${emptyId}: ${r.status}`);
      await page.goto(`${BASE_URL}/#/dashboard/${emptyId}?range=1d`);
      await page.waitForSelector('main[data-page=dashboard][data-ready]');
      for (const f of [...FIVE, "LatLon"]) {
        const text = await page.textContent(`.plot[data-field="${f}"]`);
        assert(/No data in this range/.test(text), `${f}: ${text}`);
        assert((await page.locator(`.plot[data-field="${f}"] canvas`).count()) === 0, `${f}: an empty plot draws a grid`);
      }
      for (const f of FIVE) {
        const g = await page.textContent(`.gauge[data-field="${f}"]`);
        assert(/No reading/.test(g), `${f} gauge: ${g}`);
        assert((await page.locator(`.gauge[data-field="${f}"] .dial-value`).count()) === 0, `${f} gauge draws a value it does not have`);
      }
      await axe(page, "dashboard (empty)");
    });

    await step("dashboard, unknown device: one message", async () => {
      await page.goto(`${BASE_URL}/#/dashboard/${run}-nobody?range=1d`);
      await page.waitForSelector('main[data-page=dashboard][data-ready="unknown"]');
      const text = await page.textContent("main");
      assert((text.match(/not registered/g) ?? []).length === 1, `want one message: ${text}`);
      assert((await page.locator(".plot, .gauge").count()) === 0, "plots or gauges shown for an unknown device");
      await axe(page, "dashboard (unknown device)");
    });

    await step(`delete ${deviceX}: the confirmation says what re-registering does; the result is in view`, async () => {
      await page.click("#nav-devices");
      await page.waitForSelector("main[data-page=devices][data-loaded]:not([data-loaded=''])");
      // Sorted by last seen, oldest first: devices never seen (here the empty one) come first.
      await sortBy(page, "seen-old");
      await page.waitForSelector(`table.devices tbody tr:first-child[data-device="${emptyId}"]`);
      assert((await rows(page).first().getAttribute("data-status")) === "silent", `${emptyId} is not shown silent`);
      await shot("devices");
      await sortBy(page, "id");
      await search(page, deviceX);
      const menu = await openMenu(page, deviceX);
      await menu.locator("button.delete").click();
      const dlg = page.locator("dialog.confirm[open]");
      await inViewport(page, dlg, "the delete confirmation");
      assert(/registered again.*old data/.test(await page.textContent("#delete-effect")), `without data: ${await page.textContent("#delete-effect")}`);
      await page.check("#delete-data");
      assert(/registered again.*no data/.test(await page.textContent("#delete-effect")), `with data: ${await page.textContent("#delete-effect")}`);
      await axe(page, "delete confirmation");
      await page.click("#confirm-ok");
      const toast = page.locator("#toast");
      await inViewport(page, toast, "the delete result");
      assert(/Deleted/.test(await toast.textContent()), await toast.textContent());
      await page.locator(`tr[data-device="${deviceX}"]`).waitFor({ state: "detached" });
      const r = await api("GET", `/api/devices/${deviceX}/summary`);
      assert(r.status === 404, `${deviceX} still known: ${r.status}`);
      // What the confirmation promised: registered again once the second data pass is done (PurgeDelaySeconds,
      // 35 s here), the id starts with no data. Before that, registering it again is refused and says when.
      const early = await api("POST", `/api/devices/${deviceX}`);
      assert(early.status === 409 && /register it again after/.test(early.data.error), `re-registering ${deviceX} at once: ${early.status} ${JSON.stringify(early.data)}`);
      await search(page, "");
    });

    const BIG = Math.max(FLEET, Number(process.env.BIG_FLEET ?? 10_000));
    const bigPrefix = process.env.BIG_PREFIX || `${run}-k`; // run.sh names it, for the overview test to reuse
    const big = Array.from({ length: BIG }, (_, i) => `${bigPrefix}${String(i).padStart(5, "0")}`);
    await step(`${BIG.toLocaleString("en-US")} devices bulk-registered (1,000 a request): search, sort, status filter and paging`, async () => {
      let t0 = Date.now();
      const parts = [];
      for (let i = 0; i < big.length; i += 1000) parts.push(big.slice(i, i + 1000));
      // one request at a time: the DynamoDB stand-in serves one at a time, and each request must end within the
      // function's timeout on a loaded machine
      await forEach(parts, 1, async (part) => {
        const r = await api("POST", "/api/devices", { deviceIds: part });
        assert(r.status === 200 && r.data.created === part.length, `bulk ${part[0]}…: ${r.status} ${JSON.stringify(r.data).slice(0, 200)}`);
        bigCreated.push(...part);
      });
      console.log(`     ${BIG} devices bulk-registered in ${Date.now() - t0} ms`);
      const timings = [];
      // each action's time until its rows are shown (logged, not asserted: the machine's load decides it)
      const timed = async (what, act, want) => {
        t0 = Date.now();
        await act();
        await listed(page, want);
        timings.push(`${what} ${Date.now() - t0} ms`);
        return pageIds(page);
      };
      const k = bigPrefix;
      const expect = (ids, want, what) => assert(ids.join(",") === want.join(","), `${what}: ${ids.slice(0, 4).join(",")}…, want ${want.slice(0, 4).join(",")}…`);
      await timed("refresh", () => page.click("#refresh"), { q: "", filter: "all", sort: "id", page: 0 });
      await page.waitForFunction((n) => Number(document.querySelector("main").dataset.loaded) >= n, BIG + FLEET);
      assert((await page.textContent("#device-count")).startsWith(`${Number(await page.getAttribute("main", "data-loaded")).toLocaleString("en-US")} devices`),
        `count: ${await page.textContent("#device-count")}`);
      assert((await rows(page).count()) === 50, `page 1 shows ${await rows(page).count()} rows`);

      // search: an id prefix, answered by the server over the whole registry
      expect(await timed("search (10 matches)", () => page.fill("#device-search", `${k}0012`), { q: `${k}0012`, page: 0 }), big.slice(120, 130), `search ${k}0012`);
      assert(await page.isDisabled("#page-next"), "Next is enabled under a search with 10 matches");
      // paging: forward three pages and back one, each page the next 50 ids in order
      expect(await timed("search (10,000 matches)", () => page.fill("#device-search", k), { q: k, page: 0 }), big.slice(0, 50), `search ${k}`);
      for (let p = 1; p <= 3; p++) {
        expect(await timed(`page ${p + 1}`, () => page.click("#page-next"), { q: k, page: p }), big.slice(50 * p, 50 * p + 50), `page ${p + 1}`);
      }
      expect(await timed("back a page", () => page.click("#page-prev"), { q: k, page: 2 }), big.slice(100, 150), "back on page 3");
      // sort by last seen, oldest first: the silent first, and none of these devices has written, so by id
      expect(await timed("sort: last seen, oldest first", () => sortBy(page, "seen-old"), { q: k, sort: "seen-old", page: 0 }),
        big.slice(0, 50), "last seen, oldest first");
      expect(await timed("sort: last seen, page 2", () => page.click("#page-next"), { q: k, sort: "seen-old", page: 1 }),
        big.slice(50, 100), "last seen, oldest first, page 2");
      // status filter: the silent ones are these 10,000 (and the fleet's silent); none of them is online
      const { silent, online } = (await api("GET", "/api/devices/counts")).data;
      assert(silent >= BIG, `counts: ${silent} silent, want at least ${BIG}`);
      expect(await timed("status filter: silent", () => page.click('.chip[data-filter="silent"]'), { q: k, filter: "silent", sort: "seen-old", page: 0 }),
        big.slice(0, 50), "silent, searched");
      assert(new RegExp(`Silent ${silent.toLocaleString("en-US")}\\b`).test(await page.textContent('.chip[data-filter="silent"]')),
        `silent chip: ${await page.textContent('.chip[data-filter="silent"]')}, API: ${silent}`);
      // newest first within the silent: the never seen by id, reversed. (Unfiltered, newest first reads the online,
      // late and silent index partitions one after another: checked on the small fleet above.)
      expect(await timed("sort: last seen, newest first, silent", () => sortBy(page, "seen-new"), { q: k, filter: "silent", sort: "seen-new", page: 0 }),
        big.slice(-50).reverse(), "silent, last seen, newest first");
      expect(await timed("sort: id, silent", () => sortBy(page, "id"), { q: k, filter: "silent", sort: "id", page: 0 }),
        big.slice(0, 50), "silent, by id");
      expect(await timed("status filter: online", () => page.click('.chip[data-filter="online"]'), { q: k, filter: "online", page: 0 }), [], "online, searched");
      await search(page, "");
      await timed("status filter: silent, all ids", () => page.click('.chip[data-filter="silent"]'), { q: "", filter: "silent", page: 0 });
      const states = await rows(page).evaluateAll((trs) => trs.map((tr) => tr.dataset.status));
      assert(states.length === 50 && states.every((st) => st === "silent"), `the silent filter shows ${states.length} rows: ${[...new Set(states)].join(",")}`);
      assert(new RegExp(`${silent.toLocaleString("en-US")} match`).test(await page.textContent("#device-count")), `count: ${await page.textContent("#device-count")}`);
      assert(/Page 1 of /.test(await page.textContent(".pager")), `a status filter's pager: ${await page.textContent(".pager")}`);
      console.log(`     ${timings.join("; ")} (online: ${online})`);
      await page.click('.chip[data-filter="all"]');
      await listed(page, { filter: "all" });
      await axe(page, `devices (${BIG.toLocaleString("en-US")})`);

      // the dashboard's device picker over the same fleet: the server's first 50 ids starting with the text
      await page.goto(`${BASE_URL}/#/dashboard/${big[0]}?range=1h`);
      await page.waitForSelector("main[data-page=dashboard][data-ready]");
      const options = async (text) => {
        await page.fill("#device-picker", text);
        await page.waitForFunction((first) => document.querySelector("#device-options li")?.dataset.id === first, text === k ? big[0] : big[120]);
        return page.locator("#device-options li").evaluateAll((lis) => lis.map((li) => li.dataset.id));
      };
      expect(await options(`${k}0012`), big.slice(120, 130), `the picker for ${k}0012`);
      assert(await page.isHidden("#device-options-more"), "the picker says more match for 10 ids");
      expect(await options(k), big.slice(0, 50), `the picker for ${k}`);
      assert(/keep typing/.test(await page.textContent("#device-options-more")) && (await page.isVisible("#device-options-more")),
        "the picker does not say more match");
      await page.fill("#device-picker", big[BIG - 1]);
      await page.keyboard.press("Enter"); // before the typing's read came back: Enter reads, then opens that device
      await page.waitForFunction((id) => location.hash.startsWith(`#/dashboard/${id}`), big[BIG - 1]);
    });

    // after the big fleet's step, which runs while the delete's second data pass waits (PurgeDelaySeconds)
    await step(`${deviceX} registered again once the delete's second pass is done: it starts with no data`, async () => {
      let again = await api("POST", `/api/devices/${deviceX}`);
      for (let i = 0; i < 60 && again.status === 409; i++) {
        await new Promise((r) => setTimeout(r, 2000));
        again = await api("POST", `/api/devices/${deviceX}`);
      }
      assert(again.status === 201, `re-registering ${deviceX} after the second pass: ${again.status}`);
      // 30 days: the hourly aggregates of its backfilled week are gone too, not only the raw points.
      const m = await api("GET", `/api/devices/${deviceX}/measurements?start=-30d`);
      const points = Object.values(m.data.values ?? {}).flat().filter((v) => v !== null).length;
      assert(m.status === 200 && points === 0, `${deviceX} registered again still has ${points} values in the last 30 days`);
      assert((await api("DELETE", `/api/devices/${deviceX}`)).status === 204, `deleting ${deviceX} again`);
    });

    // ---------------------------------------------------------------- phone
    const phone = await newPage(PHONE);
    const pshot = shotOf(phone);
    await step("phone (390 px): rows become cards, no horizontal scroll, every action reachable", async () => {
      await phone.goto(`${BASE_URL}/#/devices`);
      await useKey(phone);
      await noHorizontalScroll(phone, "devices");
      const first = rows(phone).first();
      await phone.evaluate(() => window.scrollTo(0, 0));
      const top = await first.locator("th").boundingBox();
      assert(top && top.y + top.height <= PHONE.height, `the first device card starts below the fold: y=${top?.y}`);
      const id = await first.getAttribute("data-device");
      assert((await first.evaluate((tr) => getComputedStyle(tr).display)) === "block", "rows are not cards");
      await first.scrollIntoViewIfNeeded();
      await inViewport(phone, first.locator("a.primary-action"), "the Dashboard action");
      await inViewport(phone, first.locator("button.menu-button"), "the menu button");
      const menu = await openMenu(phone, id);
      for (const b of await menu.locator("button").all()) await inViewport(phone, b, `menu item ${await b.textContent()}`);
      await menu.locator("button.config").click();
      const panel = phone.locator("dialog.panel[open]");
      await inViewport(phone, panel, "the configuration panel on a phone");
      await noHorizontalScroll(phone, "devices with the panel");
      await phone.keyboard.press("Escape");
      await (await openMenu(phone, id)).locator("button.rotate").click();
      await inViewport(phone, phone.locator("dialog.confirm[open]"), "the rotate confirmation on a phone");
      await phone.click("#confirm-cancel");
      await axe(phone, "devices on a phone");
      await pshot("devices-phone", true, 1600);
    });

    await step("phone: the dashboard fits, the picker works, axe", async () => {
      await phone.goto(`${BASE_URL}/#/dashboard/${fleet[0]}?range=1d`);
      await phone.waitForSelector("main[data-page=dashboard][data-ready]");
      await noHorizontalScroll(phone, "dashboard");
      await inViewport(phone, phone.locator("#device-picker"), "the device picker");
      await axe(phone, "dashboard on a phone");
      await pshot("dashboard-phone", true);
      await phone.setViewportSize({ width: 360, height: 740 });
      await phone.goto(`${BASE_URL}/#/devices`);
      await phone.waitForSelector("main[data-page=devices][data-loaded]:not([data-loaded=''])");
      await noHorizontalScroll(phone, "devices at 360 px");
      await phone.goto(`${BASE_URL}/#/dashboard/${fleet[0]}?range=7d`);
      await phone.waitForSelector('main[data-page=dashboard][data-range="7d"][data-ready]');
      await noHorizontalScroll(phone, "dashboard at 360 px");
    });

    await step("no script errors or CSP violations in the pages", async () => {
      assert(pageErrors.length === 0, pageErrors.join("; "));
    });
  } finally {
    if (browser) await browser.close().catch(() => {});
    // A run against a long-lived API must not leave its devices behind (404 for those already deleted).
    await forEach(created, 8, (id) => api("DELETE", `/api/devices/${id}?data=true`).catch(() => {}));
    if (!process.env.KEEP_BIG) await forEach(bigCreated, 16, (id) => api("DELETE", `/api/devices/${id}`).catch(() => {}));
    await keepShots(shots);
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
