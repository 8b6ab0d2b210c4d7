// The Dashboard page: range picker, gauges from /summary, five line plots from /measurements (auto window) and a
// Lat/Lon trace.
import type uPlot from "uplot";
import { call, enc, type Device, type Measurements, summaryFields, summaryLastEntry, type FieldSummary } from "./api";
import { h, clear, svg, fmtNumber, fmtTime } from "./dom";
import { FIELDS, linePlot, tracePlot, type FieldInfo } from "./plots";

export const RANGES = ["1h", "1d", "7d", "30d"] as const;
export type Range = (typeof RANGES)[number];

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
  clear(root);
  root.removeAttribute("data-ready");
  root.setAttribute("data-range", range);
  root.setAttribute("data-device", deviceId);
  const select = h("select", { id: "device-select", onchange: () => (location.hash = `#/dashboard/${enc(select.value)}?range=${range}`) });
  const picker = h("div", { class: "ranges", role: "group" },
    ...RANGES.map((r) => h("a", { class: r === range ? "button active" : "button", href: `#/dashboard/${enc(deviceId)}?range=${r}`, "data-range": r }, r)));
  const status = h("span", { class: "status", id: "dashboard-status" });
  const gauges = h("div", { class: "gauges", id: "gauges" });
  const grid = h("div", { class: "plots", id: "plots" });
  const trace = h("div", { class: "plot trace", id: "trace", "data-field": "LatLon" });
  root.append(
    h("section", { class: "card" },
      h("div", { class: "card-head" }, h("h2", {}, "Device dashboard"), select, picker, status)),
    gauges,
    grid);

  void fillDeviceSelect(select, deviceId);
  if (!deviceId) {
    status.textContent = "Pick a device (register one on the Devices page).";
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
  void load(gen, root, deviceId, range, status, gauges, grid, trace);
}

async function fillDeviceSelect(select: HTMLSelectElement, current: string): Promise<void> {
  try {
    const list = (await call<Device[]>("GET", "/api/devices")).data ?? [];
    const ids = list.map((d) => d.deviceId);
    if (current && !ids.includes(current)) ids.unshift(current);
    select.append(h("option", { value: "", disabled: true, selected: !current }, "device…"));
    for (const id of ids) select.append(h("option", { value: id, selected: id === current }, id));
    // The bare Dashboard link opens the first device.
    if (!current && ids.length > 0) location.replace(`#/dashboard/${enc(ids[0])}`);
  } catch {
    if (current) select.append(h("option", { value: current, selected: true }, current));
  }
}

async function load(gen: number, root: HTMLElement, id: string, range: Range, status: HTMLElement, gauges: HTMLElement, grid: HTMLElement, trace: HTMLElement): Promise<void> {
  status.textContent = "loading…";
  const base = `/api/devices/${enc(id)}`;
  const [m, s, t] = await Promise.allSettled([
    call<Measurements>("GET", `${base}/measurements?start=-${range}`),
    call<Record<string, unknown>>("GET", `${base}/summary?range=${range}`),
    call<Measurements>("GET", `${base}/measurements?start=-${range}&fields=Lat,Lon`),
  ]);
  if (gen !== generation) return; // the page changed while loading
  const problems: string[] = [];

  if (s.status === "fulfilled") {
    const fields = summaryFields(s.value.data ?? {});
    for (const f of FIELDS) gauges.append(gauge(f, fields[f.name]));
    const last = summaryLastEntry(s.value.data ?? {});
    gauges.append(h("div", { class: "gauge-note" }, `last entry: ${fmtTime(last)}`));
  } else {
    problems.push(`summary: ${(s.reason as Error).message}`);
  }

  if (m.status === "fulfilled") {
    const data = m.value.data;
    const xs = data.time.map((t) => Date.parse(t) / 1000);
    for (const f of FIELDS) {
      const ys = data.values?.[f.name] ?? [];
      const n = ys.filter((v) => v !== null && v !== undefined).length;
      const box = h("div", { class: "plot", "data-field": f.name, "data-points": n });
      grid.append(h("section", { class: "card plot-card" }, h("h3", {}, `${f.name} `, h("small", {}, f.unit)), box));
      plots.push(linePlot(box, f, xs, ys));
    }
    status.textContent = `${id} · ${range} · every ${data.every} · ${data.time.length} rows`;
  } else {
    problems.push(`measurements: ${(m.reason as Error).message}`);
  }
  // The trace takes the sixth cell of the plot grid.
  grid.append(h("section", { class: "card plot-card" }, h("h3", {}, "Lat/Lon trace"), trace));

  if (t.status === "fulfilled") {
    const lon = (t.value.data.values?.["Lon"] ?? []) as number[];
    const lat = (t.value.data.values?.["Lat"] ?? []) as number[];
    const n = lon.filter((v, i) => v != null && lat[i] != null).length;
    trace.setAttribute("data-points", String(n));
    plots.push(tracePlot(trace, lon, lat));
  } else {
    problems.push(`trace: ${(t.reason as Error).message}`);
  }

  if (problems.length) status.textContent = problems.join(" · ");
  root.setAttribute("data-ready", problems.length ? "error" : "ok");
}

// gauge is a half-circle dial of the last value over the sensor's range, with min/mean/max of the period below.
function gauge(f: FieldInfo, s: FieldSummary | undefined): HTMLElement {
  const last = s?.last ?? null;
  const frac = last === null ? 0 : Math.max(0, Math.min(1, (last - f.min) / (f.max - f.min)));
  const r = 50;
  const arc = (a: number) => {
    const ang = Math.PI * (1 - a);
    return `${60 + r * Math.cos(ang)} ${60 - r * Math.sin(ang)}`;
  };
  const dial = svg("svg", { viewBox: "0 0 120 70", class: "dial" },
    svg("path", { d: `M ${arc(0)} A ${r} ${r} 0 0 1 ${arc(1)}`, class: "dial-track" }),
    svg("path", { d: `M ${arc(0)} A ${r} ${r} 0 0 1 ${arc(frac)}`, class: "dial-value", stroke: f.color }));
  return h("div", { class: "card gauge", "data-field": f.name, "data-last": last ?? "" },
    h("div", { class: "gauge-title" }, f.name),
    dial,
    h("div", { class: "gauge-value" }, `${fmtNumber(last)} `, h("small", {}, f.unit)),
    h("div", { class: "gauge-stats" }, `min ${fmtNumber(s?.min)} · mean ${fmtNumber(s?.mean)} · max ${fmtNumber(s?.max)}`),
    h("div", { class: "gauge-time" }, s?.lastTime ? fmtTime(s.lastTime) : "no data"));
}
