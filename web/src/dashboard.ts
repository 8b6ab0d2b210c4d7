// The Dashboard page: a device combobox, range picker, gauges from /summary, five line plots from /measurements (auto
// window) and a Lat/Lon trace. Empty ranges say so inside each plot; an unknown device gets one message.
import type uPlot from "uplot";
import { call, enc, ApiError, type Measurements, type Summary, type FieldSummary } from "./api";
import { h, svg, announce } from "./dom";
import { fmtNumber, fmtTime, ZONE, medianGap, durationMs, everyText } from "./format";
import { FIELDS, linePlot, tracePlot, type FieldInfo } from "./plots";
import { devicePicker } from "./picker";

export const RANGES = ["1h", "1d", "7d", "30d"] as const;
export type Range = (typeof RANGES)[number];
const RANGE_NAMES: Record<Range, string> = { "1h": "last hour", "1d": "last day", "7d": "last 7 days", "30d": "last 30 days" };

let plots: uPlot[] = [];
let resizeBound = false;
// generation identifies the current render: a load that finishes after the page moved on must not touch it.
let generation = 0;

function destroyPlots(): void {
  for (const p of plots) p.destroy();
  plots = [];
}

export function dashboardPage(root: HTMLElement, deviceId: string, range: Range): void {
  const gen = ++generation;
  destroyPlots();
  document.title = deviceId ? `${deviceId}, ${RANGE_NAMES[range]} · Dashboard · IoT Center` : "Dashboard · IoT Center";
  root.removeAttribute("data-ready");
  root.setAttribute("data-range", range);
  root.setAttribute("data-device", deviceId);
  const ranges = h("div", { class: "ranges", role: "group", "aria-label": "Time range" },
    ...RANGES.map((r) => h("a", {
      class: r === range ? "button range active" : "button range", href: `#/dashboard/${enc(deviceId)}?range=${r}`, "data-range": r,
      "aria-current": r === range ? "true" : undefined, title: RANGE_NAMES[r],
    }, r === range ? h("span", { "aria-hidden": "true" }, "✓ ") : null, r)));
  const status = h("p", { class: "status", id: "dashboard-status", role: "status" });
  const body = h("div", { id: "dashboard-body" });
  root.replaceChildren(
    h("h1", { class: "page-title" }, deviceId ? `Dashboard: ${deviceId}` : "Dashboard"),
    h("section", { class: "card", "aria-label": "Device and range" },
      h("div", { class: "card-head" },
        devicePicker(deviceId, (id) => (location.hash = `#/dashboard/${enc(id)}?range=${range}`)),
        deviceId ? ranges : null),
      status),
    body);
  if (!deviceId) {
    status.textContent = "Pick a device above (register one on the Devices page).";
    root.setAttribute("data-ready", "empty");
    return;
  }
  if (!resizeBound) {
    resizeBound = true;
    let t = 0;
    window.addEventListener("resize", () => {
      clearTimeout(t);
      t = window.setTimeout(() => {
        for (const p of plots) {
          const parent = p.root.parentElement;
          if (parent) p.setSize({ width: Math.max(240, parent.clientWidth), height: p.height });
        }
      }, 150);
    });
  }
  void load(gen, root, deviceId, range, status, body);
}

async function load(gen: number, root: HTMLElement, id: string, range: Range, status: HTMLElement, body: HTMLElement): Promise<void> {
  status.textContent = "Loading…";
  const base = `/api/devices/${enc(id)}`;
  const [m, s, t] = await Promise.allSettled([
    call<Measurements>("GET", `${base}/measurements?start=-${range}`),
    call<Summary>("GET", `${base}/summary?range=${range}`),
    call<Measurements>("GET", `${base}/measurements?start=-${range}&fields=Lat,Lon`),
  ]);
  if (gen !== generation) return; // the page changed while loading
  const failures = [m, s, t].filter((r): r is PromiseRejectedResult => r.status === "rejected").map((r) => r.reason as Error);
  if (failures.some((e) => e instanceof ApiError && e.status === 404)) {
    status.textContent = "";
    body.replaceChildren(h("section", { class: "card notice", id: "unknown-device", role: "alert" },
      h("h2", {}, `No device "${id}"`),
      h("p", {}, `${id} is not registered. Pick another device above, or register it on the `, h("a", { href: "#/devices" }, "Devices page"), ".")));
    root.setAttribute("data-ready", "unknown");
    announce(`No device ${id}`);
    return;
  }

  const gauges = h("div", { class: "gauges", id: "gauges" });
  const grid = h("div", { class: "plots", id: "plots" });
  body.replaceChildren(gauges, grid);
  const problems = failures.map((e) => e.message);

  if (s.status === "fulfilled") {
    const fields = s.value.data?.fields ?? {};
    for (const f of FIELDS) gauges.append(gauge(f, fields[f.name]));
    const last = s.value.data?.lastEntry ?? null;
    gauges.append(h("p", { class: "gauge-note" }, last ? `Last entry: ${fmtTime(last)}` : `No entry in the ${RANGE_NAMES[range]}.`));
  } else {
    gauges.append(h("p", { class: "gauge-note error" }, `Gauges unavailable: ${s.reason.message}`));
  }

  const cells: HTMLElement[] = [];
  const draw: (() => void)[] = []; // plots are drawn once their boxes are in the page (their width is known then)
  if (m.status === "fulfilled") {
    const data = m.value.data;
    const xs = data.time.map((t) => Date.parse(t) / 1000);
    let total = 0;
    for (const f of FIELDS) {
      const ys = data.values?.[f.name] ?? [];
      const n = ys.filter((v) => v != null).length;
      total += n;
      const box = h("div", { class: "plot", "data-field": f.name, "data-points": n, role: "img", "aria-label": `${f.name} over the ${RANGE_NAMES[range]}: ${n ? `${n} points` : "no data"}` });
      cells.push(h("section", { class: "card plot-card", "aria-label": f.name }, h("h2", { class: "plot-title" }, `${f.name} `, h("small", {}, f.unit)), box));
      if (n) draw.push(() => plots.push(linePlot(box, f, xs, ys)));
      else box.append(empty());
    }
    const gap = medianGap(data.time, data.values ?? {});
    const win = durationMs(data.every);
    const rows = Math.max(...FIELDS.map((f) => (data.values?.[f.name] ?? []).filter((v) => v != null).length));
    status.textContent = total === 0
      ? `${id} · ${RANGE_NAMES[range]} · no data in this range · times in ${ZONE}`
      : `${id} · ${RANGE_NAMES[range]} · ${fmtNumber(rows, 0)} points` +
        (gap ? `, one per ${everyText(gap)}` : "") +
        (win && gap && win >= gap * 0.9 ? ` (means of each ${everyText(win)})` : "") +
        ` · times in ${ZONE}`;
  } else {
    for (const f of FIELDS) cells.push(h("section", { class: "card plot-card" }, h("h2", { class: "plot-title" }, f.name), h("div", { class: "plot", "data-field": f.name, "data-points": 0 }, empty(`Could not load: ${m.reason.message}`))));
    status.textContent = `${id} · ${RANGE_NAMES[range]}`;
  }

  const trace = h("div", { class: "plot trace", id: "trace", "data-field": "LatLon", role: "img" });
  cells.push(h("section", { class: "card plot-card", "aria-label": "Lat/Lon trace" }, h("h2", { class: "plot-title" }, "Lat/Lon trace"), trace));
  grid.append(...cells);
  if (t.status === "fulfilled") {
    const lon = (t.value.data.values?.["Lon"] ?? []) as number[];
    const lat = (t.value.data.values?.["Lat"] ?? []) as number[];
    const n = lon.filter((v, i) => v != null && lat[i] != null).length;
    trace.setAttribute("data-points", String(n));
    trace.setAttribute("aria-label", `Track of the device's position over the ${RANGE_NAMES[range]}: ${n ? `${n} points` : "no data"}`);
    if (n) draw.push(() => plots.push(tracePlot(trace, lon, lat)));
    else trace.append(empty());
  } else {
    trace.setAttribute("data-points", "0");
    trace.append(empty(`Could not load: ${t.reason.message}`));
  }
  for (const d of draw) d();

  if (problems.length) status.textContent = `${status.textContent} · problems: ${problems.join("; ")}`;
  root.setAttribute("data-ready", problems.length ? "error" : "ok");
}

function empty(text = "No data in this range"): HTMLElement {
  return h("div", { class: "plot-empty" }, text);
}

// gauge is a half-circle dial of the last value over the sensor's range, with min/mean/max of the period below. A
// field without a reading shows an empty track and says so, rather than a dot at its low end.
function gauge(f: FieldInfo, s: FieldSummary | undefined): HTMLElement {
  const last = s?.last ?? null;
  const r = 50;
  const arc = (a: number) => {
    const ang = Math.PI * (1 - a);
    return `${60 + r * Math.cos(ang)} ${60 - r * Math.sin(ang)}`;
  };
  const dial = svg("svg", { viewBox: "0 0 120 70", class: "dial", "aria-hidden": "true" },
    svg("path", { d: `M ${arc(0)} A ${r} ${r} 0 0 1 ${arc(1)}`, class: "dial-track" }));
  if (last !== null) {
    const frac = Math.max(0.001, Math.min(1, (last - f.min) / (f.max - f.min)));
    dial.append(svg("path", { d: `M ${arc(0)} A ${r} ${r} 0 0 1 ${arc(frac)}`, class: "dial-value", stroke: f.color }));
  }
  return h("section", { class: "card gauge", "data-field": f.name, "data-last": last ?? "", "aria-label": `${f.name} gauge` },
    h("h2", { class: "gauge-title" }, f.name),
    dial,
    last === null
      ? h("p", { class: "gauge-value none" }, "No reading")
      : h("p", { class: "gauge-value" }, `${fmtNumber(last)} `, h("small", {}, f.unit)),
    last === null ? null : h("p", { class: "gauge-stats" }, `min ${fmtNumber(s?.min)} · mean ${fmtNumber(s?.mean)} · max ${fmtNumber(s?.max)}`),
    h("p", { class: "gauge-time" }, s?.lastTime ? fmtTime(s.lastTime) : "no reading in this range"));
}
