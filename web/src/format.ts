// Pure formatting and arithmetic of the page (no DOM), unit-tested by web/test/format.test.mjs.

// Every time on the page is shown in UTC, and says so: one zone, whatever the browser's.
export const ZONE = "UTC";

function pad(n: number): string {
  return String(n).padStart(2, "0");
}

export function fmtTime(s: string | undefined | null, seconds = true): string {
  if (!s) return "—";
  const d = new Date(s);
  if (isNaN(d.getTime())) return s;
  const t = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
  return `${t}${seconds ? ":" + pad(d.getUTCSeconds()) : ""} ${ZONE}`;
}

// fmtAgo is a short relative time ("3 min ago"), for last-seen columns.
export function fmtAgo(s: string | undefined | null, now = Date.now()): string {
  if (!s) return "never";
  const t = Date.parse(s);
  if (isNaN(t)) return "—";
  const sec = Math.max(0, Math.round((now - t) / 1000));
  if (sec < 60) return `${sec} s ago`;
  if (sec < 3600) return `${Math.floor(sec / 60)} min ago`;
  if (sec < 86400 * 2) return `${Math.floor(sec / 3600)} h ago`;
  return `${Math.floor(sec / 86400)} days ago`;
}

export function fmtNumber(v: number | null | undefined, digits = 1): string {
  if (v === null || v === undefined || !isFinite(v)) return "—";
  return v.toLocaleString("en-US", { maximumFractionDigits: digits });
}

export function fmtDuration(ms: number): string {
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

// decimals is the number of digits that print a tick step exactly (0.005 → 3, 0.0025 → 4, 2 → 0), so neighbouring
// ticks never print the same and never round: ticks are multiples of the step.
export function decimals(step: number): number {
  if (!(step > 0) || !isFinite(step)) return 0;
  for (let d = 0; d < 8; d++) {
    const v = step * 10 ** d;
    if (Math.abs(v - Math.round(v)) <= 1e-6 * v) return d;
  }
  return 8;
}

// medianGap is the typical spacing of the rows that hold a value (the median gap), in ms.
export function medianGap(times: string[], values: Record<string, (number | null)[]>): number | null {
  const ts: number[] = [];
  for (let i = 0; i < times.length; i++) {
    if (Object.values(values).some((v) => v?.[i] != null)) ts.push(Date.parse(times[i]));
  }
  const gaps = ts.slice(1).map((t, i) => t - ts[i]).filter((g) => g > 0).sort((a, b) => a - b);
  return gaps.length ? gaps[Math.floor(gaps.length / 2)] : null;
}

export function durationMs(s: string): number | null {
  const m = /^(\d+)(ms|s|m|h|d|w)$/.exec(s);
  if (!m) return null;
  return Number(m[1]) * { ms: 1, s: 1e3, m: 6e4, h: 36e5, d: 864e5, w: 6048e5 }[m[2] as "s"];
}

export function everyText(ms: number): string {
  if (ms % 864e5 === 0) return ms === 864e5 ? "day" : `${ms / 864e5} days`;
  if (ms % 36e5 === 0) return ms === 36e5 ? "hour" : `${ms / 36e5} hours`;
  if (ms % 6e4 === 0) return ms === 6e4 ? "minute" : `${ms / 6e4} minutes`;
  return fmtDuration(ms);
}


// A value of a plotted series: a number, null where the line must break (a gap), undefined where the series has no
// point at that time (another series has; the line is drawn across it).
export type Value = number | null | undefined;

// withGaps merges series given as (times, values) pairs on one time axis. Inside a series, two points further apart
// than maxGap seconds get a null between them, so its line breaks there; where a series has no point at a time of
// another, its value is undefined and its line goes on.
export function withGaps(parts: { xs: number[]; ys: (number | null)[] }[], maxGap: number): { xs: number[]; ys: Value[][] } {
  const rows = new Map<number, Value[]>();
  const at = (x: number) => {
    let r = rows.get(x);
    if (!r) {
      r = new Array(parts.length).fill(undefined);
      rows.set(x, r);
    }
    return r;
  };
  parts.forEach((p, k) => {
    let prev: number | null = null;
    for (let i = 0; i < p.xs.length; i++) {
      const y = p.ys[i];
      if (y == null) continue;
      const x = p.xs[i];
      if (prev !== null && x - prev > maxGap) {
        const r = at(prev + maxGap / 2);
        r[k] = null;
      }
      at(x)[k] = y;
      prev = x;
    }
  });
  const xs = [...rows.keys()].sort((a, b) => a - b);
  return { xs, ys: parts.map((_, k) => xs.map((x) => rows.get(x)![k])) };
}
