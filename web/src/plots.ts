// uPlot wrappers: one time-series line plot per field, and a Lat/Lon trace drawn in time order (uPlot's xy mode).
// Times are drawn in UTC (the page's one zone), 24-hour; tick labels carry as many decimals as their spacing needs.
import uPlot from "uplot";
import { decimals, type Value } from "./format";

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
  const out = vals.map((v) => (v == null ? "" : v.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d })));
  u.root.parentElement?.setAttribute(`data-ticks-${axisIdx}`, out.join("|"));
  return out;
};

// labelWidth sizes a value axis to its longest label (a fixed width cut "1,011.00" to ".011.00").
const labelWidth = (_u: uPlot, values: string[]) => {
  const longest = Math.max(3, ...(values ?? []).map((v) => String(v ?? "").length));
  return Math.ceil(longest * 7.5) + 22;
};

const pad = (n: number) => String(n).padStart(2, "0");

// timeTicks labels the time axis in UTC, 24-hour, so that no two labels are alike: seconds when ticks are less than
// a minute apart; the date under the first tick and under each one on a new day, and under every tick when the axis
// spans more than a day (12:00 on two days); dates only when ticks are a day or more apart.
const timeTicks = (u: uPlot, vals: number[], axisIdx: number, _space: number, incr: number) => {
  const span = (u.scales.x.max ?? 0) - (u.scales.x.min ?? 0);
  let prevDay = "";
  const out = vals.map((v, i) => {
    if (v == null) return "";
    const d = new Date(v * 1000);
    const md = `${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
    if (incr >= 86400) return md;
    let hm = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
    if (incr < 60) hm += `:${pad(d.getUTCSeconds())}`;
    const newDay = md !== prevDay;
    prevDay = md;
    return i === 0 || newDay || span > 86400 ? `${hm}\n${md}` : hm;
  });
  u.root.parentElement?.setAttribute(`data-ticks-${axisIdx}`, out.map((l) => l.replace("\n", " ")).join("|"));
  return out;
};

const legendTime = (_u: uPlot, v: number) => {
  if (v == null) return "—";
  const d = new Date(v * 1000);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
};

export interface LineData {
  xs: number[]; // Unix seconds, ascending
  real: Value[]; // what the device wrote
  generated: Value[] | null; // write-missing's points (null: none in the range)
  range: [number, number]; // the chosen range, in Unix seconds: the x axis spans it whatever the data
}

// GENERATED_DASH draws generated points as a dashed line: told apart without colour.
const GENERATED_DASH = [5, 4];

export function linePlot(el: HTMLElement, f: FieldInfo, d: LineData, showGenerated: boolean): uPlot {
  const series: uPlot.Series[] = [
    { label: "Time (UTC)", value: legendTime },
    { label: `${f.name} (${f.unit})`, stroke: f.color, width: 1.5, fill: f.color + "22", spanGaps: false, points: { show: false } },
  ];
  const data: Value[][] = [d.xs, d.real];
  if (d.generated) {
    series.push({ label: "generated", stroke: f.color, width: 1.25, dash: GENERATED_DASH, spanGaps: false, show: showGenerated, points: { show: false } });
    data.push(d.generated);
  }
  const opts: uPlot.Options = {
    width: width(el),
    height: HEIGHT,
    legend: { show: true, live: true },
    cursor: { drag: { x: true, y: false } },
    scales: { x: { time: true, range: () => d.range } },
    axes: [{ ...AXIS, values: timeTicks, space: 70 }, { ...AXIS, size: labelWidth, values: ticks }],
    series,
    hooks: {
      // the drawn x range, for the tests
      setScale: [(u, key) => {
        if (key === "x") {
          el.setAttribute("data-x-min", String(u.scales.x.min));
          el.setAttribute("data-x-max", String(u.scales.x.max));
        }
      }],
    },
  };
  return new uPlot(opts, data as uPlot.AlignedData, el);
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
