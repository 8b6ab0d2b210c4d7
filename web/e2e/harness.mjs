// The browser tests' common set-up (dashboard.e2e.mjs, overview.e2e.mjs): where they write, the loopback check of
// the URLs they are given, named steps with a pass/fail tally, axe-core, Debian's Chromium with its pages' script
// errors collected, and the screenshots copied to SCREENSHOTS_DIR.
//
// Env: ARTIFACTS (test-artifacts), SCREENSHOTS_DIR, CHROMIUM (/usr/bin/chromium).
import { chromium } from "playwright-core";
import { copyFile, mkdir, readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const ARTIFACTS = path.resolve(repo, process.env.ARTIFACTS ?? "test-artifacts");
export const SCREENSHOTS_DIR = process.env.SCREENSHOTS_DIR ? path.resolve(repo, process.env.SCREENSHOTS_DIR) : "";
export const STEP_TIMEOUT_MS = 30_000;
const AXE_SOURCE = await readFile(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

// loopback exits (status 2) unless every value is a loopback http URL: the tests write to what they are pointed at.
export function loopback(urls) {
  for (const [name, v] of Object.entries(urls)) {
    if (!/^http:\/\/(127\.0\.0\.1|localhost|\[::1\]):\d+$/.test(v)) {
      console.error(`${name} must be a loopback http URL, got ${v}`);
      process.exit(2);
    }
  }
}

export function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

// results holds each step's outcome, in order.
export const results = [];

// step runs fn as a named step: logged with its time, a failure logged and thrown on.
export async function step(name, fn) {
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

// forEach runs fn over items, at most `limit` at a time.
export async function forEach(items, limit, fn) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

// axe runs axe-core in the page; serious and critical violations fail the step.
export async function axe(page, view) {
  if (!(await page.evaluate(() => typeof window.axe === "object"))) await page.evaluate(AXE_SOURCE);
  const res = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, target: v.nodes[0]?.target?.join(" "), help: v.help }));
  });
  const bad = res.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert(bad.length === 0, `axe on ${view}: ${bad.map((v) => `${v.id} (${v.impact}, ${v.nodes} nodes, e.g. ${v.target}): ${v.help}`).join("; ")}`);
  const minor = res.map((v) => `${v.id}/${v.impact}`).join(", ");
  console.log(`     axe ${view}: no serious/critical violations${minor ? `; minor: ${minor}` : ""}`);
}

// launch starts headless Chromium. pageErrors collects the script errors and console errors of every page opened
// with newPage (a failed resource load is the test's business, not an error of the page).
export async function launch() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    timeout: STEP_TIMEOUT_MS,
  });
  const pageErrors = [];
  // newPage opens a page in a context of its own; init runs in the context first (e.g. to store a key).
  const newPage = async (viewport, { timezoneId, init } = {}) => {
    const ctx = await browser.newContext({ viewport, locale: "en-US", ...(timezoneId ? { timezoneId } : {}) });
    if (init) await init(ctx);
    const page = await ctx.newPage();
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    page.on("pageerror", (e) => pageErrors.push(`pageerror: ${e.message}`));
    page.on("console", (m) => {
      if (m.type() === "error" && !/Failed to load resource|net::ERR_FAILED/.test(m.text())) pageErrors.push(`console: ${m.text()}`);
    });
    return page;
  };
  return { browser, newPage, pageErrors };
}

// keepShots copies the screenshots to SCREENSHOTS_DIR when it is set (the README's pictures).
export async function keepShots(shots) {
  if (!SCREENSHOTS_DIR || shots.length === 0) return;
  await mkdir(SCREENSHOTS_DIR, { recursive: true });
  for (const f of shots) await copyFile(f, path.join(SCREENSHOTS_DIR, path.basename(f)));
}
