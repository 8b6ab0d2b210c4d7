// uPlot wrappers: one time-series line plot per field, and a Lat/Lon trace drawn in time order (uPlot's xy mode).
// Times are drawn in UTC (the page's one zone), 24-hour; tick labels carry as many decimals as their spacing needs.
import uPlot from "uplot";
import { decimals } from "./format";

export interface FieldInfo {
  name: string;
  unit: string;
  min: number;
  max: number;
  color: string;
}

// Ranges and units of the seed's virtual sensors (issue 5), used for gauges and colors (each ≥3:1 on white).
export const FIELDS: FieldInfo[] = [
  { name: "Temperature", unit: "°C", min: 0, max: 40, color: "#c2410c" },
  { name: "Humidity", unit: "%", min: 0, max: 100, color: "#1c6fc2" },
  { name: "Pressure", unit: "hPa", min: 970, max: 1050, color: "#7048e8" },
  { name: "CO2", unit: "ppm", min: 400, max: 3000, color: "#2b8a3e" },
  { name: "TVOC", unit: "ppb", min: 250, max: 2000, color: "#c2255c" },
];
export const TRACE_COLOR = "#364fc7";

const HEIGHT = 220;
const AXIS = { stroke: "#374151", grid: { stroke: "#e5e7eb" }, ticks: { stroke: "#9ca3af" } };

function width(el: HTMLElement): number {
  return Math.max(240, Math.floor(el.clientWidth || 600));
}

// ticks formats an axis' values; the labels drawn are also left on the plot element (data-ticks-N) for the tests.
const ticks = (u: uPlot, vals: number[], axisIdx: number) => {
  const step = vals.length > 1 ? Math.abs(vals[1] - vals[0]) : 0;
  const d = decimals(step);
  const out = vals.map((v) => (v == null ? "" : v.toFixed(d)));
  u.root.parentElement?.setAttribute(`data-ticks-${axisIdx}`, out.join("|"));
  return out;
};

const pad = (n: number) => String(n).padStart(2, "0");

// timeTicks labels the time axis in UTC, 24-hour: hours and minutes, with the date under the first tick and under
// each midnight; dates only when ticks are a day or more apart.
const timeTicks = (_u: uPlot, vals: number[], _axis: number, _space: number, incr: number) =>
  vals.map((v, i) => {
    if (v == null) return "";
    const d = new Date(v * 1000);
    const md = `${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
    if (incr >= 86400) return md;
    const hm = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
    return i === 0 || (d.getUTCHours() === 0 && d.getUTCMinutes() === 0) ? `${hm}\n${md}` : hm;
  });

const legendTime = (_u: uPlot, v: number) => {
  if (v == null) return "—";
  const d = new Date(v * 1000);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
};

export function linePlot(el: HTMLElement, f: FieldInfo, xs: number[], ys: (number | null)[]): uPlot {
  const opts: uPlot.Options = {
    width: width(el),
    height: HEIGHT,
    legend: { show: true, live: true },
    cursor: { drag: { x: true, y: false } },
    scales: { x: { time: true } },
    axes: [{ ...AXIS, values: timeTicks }, { ...AXIS, size: 60, values: ticks }],
    series: [{ label: "Time (UTC)", value: legendTime }, { label: `${f.name} (${f.unit})`, stroke: f.color, width: 1.5, fill: f.color + "22", spanGaps: false, points: { show: false } }],
  };
  return new uPlot(opts, [xs, ys] as uPlot.AlignedData, el);
}

// tracePath draws the points in the order they were measured (uPlot's own builders assume x sorted).
const tracePath: uPlot.Series.PathBuilder = (u, seriesIdx) => {
  const [xs, ys] = u.data[seriesIdx] as unknown as [number[], number[]];
  const xKey = u.series[seriesIdx].facets![0].scale;
  const yKey = u.series[seriesIdx].facets![1].scale;
  const stroke = new Path2D();
  let started = false;
  for (let i = 0; i < xs.length; i++) {
    if (xs[i] == null || ys[i] == null) {
      started = false;
      continue;
    }
    const x = u.valToPos(xs[i], xKey, true);
    const y = u.valToPos(ys[i], yKey, true);
    if (started) stroke.lineTo(x, y);
    else stroke.moveTo(x, y);
    started = true;
  }
  return { stroke, fill: null, clip: null, band: null, flags: 0 } as uPlot.Series.Paths;
};

function padded(vals: number[]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of vals) {
    if (v == null || !isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const pad = Math.max((hi - lo) * 0.05, 1e-4);
  return [lo - pad, hi + pad];
}

// tracePlot needs at least one point (the caller shows "No data in this range" instead).
export function tracePlot(el: HTMLElement, lon: number[], lat: number[]): uPlot {
  const opts: uPlot.Options = {
    mode: 2,
    width: width(el),
    height: HEIGHT + 26, // the line plots' legend row, so the grid's cells line up
    legend: { show: false },
    cursor: { show: false },
    scales: {
      lon: { time: false, auto: false, range: padded(lon) },
      lat: { auto: false, range: padded(lat) },
    },
    axes: [
      { ...AXIS, scale: "lon", label: "Lon (°)", space: 80, values: ticks },
      { ...AXIS, scale: "lat", label: "Lat (°)", size: 80, values: ticks },
    ],
    series: [
      {},
      {
        label: "track",
        stroke: TRACE_COLOR,
        width: 1.5,
        facets: [
          { scale: "lon", auto: false },
          { scale: "lat", auto: false },
        ],
        paths: tracePath,
        points: { show: false },
      } as uPlot.Series,
    ],
  };
  return new uPlot(opts, [null, [lon, lat]] as unknown as uPlot.AlignedData, el);
}
