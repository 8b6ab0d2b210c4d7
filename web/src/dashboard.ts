// The Dashboard page: a device combobox, range picker, gauges from /summary, five line plots from /measurements (auto
// window) and a Lat/Lon trace. Empty ranges say so inside each plot; an unknown device gets one message.
import type uPlot from "uplot";
import { call, enc, ApiError, type Measurements, type Summary, type FieldSummary } from "./api";
import { h, svg, announce } from "./dom";
import { fmtNumber, fmtTime, ZONE, medianGap, durationMs, everyText, withGaps } from "./format";
import { FIELDS, linePlot, tracePlot, type FieldInfo } from "./plots";
import { devicePicker } from "./picker";

export const RANGES = ["1h", "1d", "7d", "30d"] as const;
export type Range = (typeof RANGES)[number];
const RANGE_NAMES: Record<Range, string> = { "1h": "last hour", "1d": "last day", "7d": "last 7 days", "30d": "last 30 days" };

let plots: uPlot[] = [];
let resizeBound = false;
// Whether generated points (write-missing's) are drawn; kept while the page lives.
let showGenerated = true;
// A line breaks where two points are further apart than GAP_INTERVALS times the data's interval.
const GAP_INTERVALS = 3;
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
  const [m, g, s, t] = await Promise.allSettled([
    call<Measurements>("GET", `${base}/measurements?start=-${range}&origin=device`),
    call<Measurements>("GET", `${base}/measurements?start=-${range}&origin=generated`),
    call<Summary>("GET", `${base}/summary?range=${range}`),
    call<Measurements>("GET", `${base}/measurements?start=-${range}&fields=Lat,Lon`),
  ]);
  if (gen !== generation) return; // the page changed while loading
  const failures = [m, g, s, t].filter((r): r is PromiseRejectedResult => r.status === "rejected").map((r) => r.reason as Error);
  if (failures.some((e) => e instanceof ApiError && e.status === 404)) {
    status.textContent = "";
    body.replaceChildren(h("section", { class: "card notice", id: "unknown-device", role: "alert" },
      h("h2", {}, `No device "${id}"`),
      h("p", {}, `${id} is not registered. Pick another device above, or register it on the `, h("a", { href: "#/devices" }, "Devices page"), ".")));
    root.setAttribute("data-ready", "unknown");
    announce(`No device ${id}`);
    return;
  }
  if (failures.length && failures.every((e) => e instanceof ApiError && (e.status === 401 || e.status === 403))) {
    // one message for a refused key, not one per plot
    status.textContent = "";
    body.replaceChildren(h("section", { class: "card notice", id: "key-refused", role: "alert" },
      h("h2", {}, "The operator key was refused"),
      h("p", {}, "The API no longer accepts the key of this tab (it was changed or revoked). Enter a valid operator key above to see this device.")));
    root.setAttribute("data-ready", "refused");
    announce("The operator key was refused");
    return;
  }

  const gauges = h("div", { class: "gauges", id: "gauges" });
  const grid = h("div", { class: "plots", id: "plots" });
  const toggle = h("input", { type: "checkbox", id: "show-generated", checked: showGenerated });
  const legend = h("p", { class: "generated-note", id: "generated-note" });
  body.replaceChildren(gauges, legend, grid);
  const problems = [...new Set(failures.map((e) => e.message))];

  if (s.status === "fulfilled") {
    const fields = s.value.data?.fields ?? {};
    for (const f of FIELDS) gauges.append(gauge(f, fields[f.name]));
    const last = s.value.data?.lastEntry ?? null;
    const note = h("p", { class: "gauge-note", id: "gauge-note" }, last ? `Last entry: ${fmtTime(last)}` : `No entry in the ${RANGE_NAMES[range]}.`);
    gauges.append(note);
    // the gauges summarize every point; say so when some are generated
    const anyGenerated = g.status === "fulfilled" && Object.values(g.value.data?.values ?? {}).some((vs) => vs?.some((v) => v != null));
    if (anyGenerated) note.append(" Gauges include generated points.");
  } else {
    gauges.append(h("p", { class: "gauge-note error" }, `Gauges unavailable: ${s.reason.message}`));
  }

  const cells: HTMLElement[] = [];
  const draw: (() => void)[] = []; // plots are drawn once their boxes are in the page (their width is known then)
  if (m.status === "fulfilled") {
    const data = m.value.data;
    const gdata = g.status === "fulfilled" ? g.value.data : null;
    const secs = (ts: string[]) => ts.map((x) => Date.parse(x) / 1000);
    const xs = secs(data.time);
    const gxs = gdata ? secs(gdata.time) : [];
    const rangeSec: [number, number] = [Date.parse(data.start) / 1000, Date.parse(data.stop) / 1000];
    // the data's interval: the window, or the typical spacing of the device's and the generated points together
    const all = [...data.time, ...(gdata?.time ?? [])].sort();
    const gap = medianGap(all, { all: all.map(() => 0) });
    const win = durationMs(data.every);
    const maxGap = (GAP_INTERVALS * Math.max(win ?? 0, gap ?? 0, 60_000)) / 1000;
    let total = 0;
    let generated = 0;
    for (const f of FIELDS) {
      const ys = data.values?.[f.name] ?? [];
      const gys = gdata?.values?.[f.name] ?? [];
      const n = ys.filter((v) => v != null).length;
      const ng = gys.filter((v) => v != null).length;
      total += n;
      generated += ng;
      const box = h("div", {
        class: "plot", "data-field": f.name, "data-points": n, "data-generated": ng, role: "img",
        "aria-label": `${f.name} over the ${RANGE_NAMES[range]}: ${n ? `${n} points` : "no data"}${ng ? `, ${ng} generated points (dashed)` : ""}`,
      });
      cells.push(h("section", { class: "card plot-card", "aria-label": f.name }, h("h2", { class: "plot-title" }, `${f.name} `, h("small", {}, f.unit)), box));
      if (n || ng) {
        const merged = withGaps([{ xs, ys }, { xs: gxs, ys: gys }], maxGap);
        box.setAttribute("data-breaks", String(merged.ys[0].filter((v) => v === null).length));
        draw.push(() => plots.push(linePlot(box, f, { xs: merged.xs, real: merged.ys[0], generated: ng ? merged.ys[1] : null, range: rangeSec }, showGenerated)));
      } else box.append(empty());
    }
    // rows with a value, and their typical spacing: the device's, then the generated ones
    const spacing = (d: Measurements | null, what: string) => {
      if (!d) return "";
      const n = Math.max(0, ...FIELDS.map((f) => (d.values?.[f.name] ?? []).filter((v) => v != null).length));
      const step = medianGap(d.time, d.values ?? {});
      return `${fmtNumber(n, 0)} ${what}` + (step ? `, one per ${everyText(step)}` : "") +
        (win && step && win >= step * 0.9 ? ` (means of each ${everyText(win)})` : "");
    };
    status.textContent = total === 0 && generated === 0
      ? `${id} · ${RANGE_NAMES[range]} · no data in this range · times in ${ZONE}`
      : `${id} · ${RANGE_NAMES[range]} · ${spacing(data, "points from the device")}` +
        (generated ? ` · ${spacing(gdata, "generated points (dashed)")}` : "") +
        ` · times in ${ZONE}`;
    if (generated) {
      legend.replaceChildren(
        h("span", {}, h("span", { class: "dash-sample", "aria-hidden": "true" }), " Dashed lines are generated points (Write missing data), not the device's measurements. "),
        h("label", { class: "check", for: "show-generated" }, toggle, " Show generated points"));
      toggle.addEventListener("change", () => {
        showGenerated = toggle.checked;
        for (const p of plots) if (p.series.length > 2) p.setSeries(2, { show: showGenerated });
        grid.setAttribute("data-generated-shown", String(showGenerated));
      });
      grid.setAttribute("data-generated-shown", String(showGenerated));
    } else legend.remove();
    if (g.status === "rejected") problems.push(`generated points: ${g.reason.message}`);
  } else {
    legend.remove();
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

  if (problems.length) status.textContent = `${status.textContent} · problems: ${[...new Set(problems)].join("; ")}`;
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
