// The fleet overview, the dashboard's home: status counts now and over a range, every device on a world map (a
// canvas, with the same devices in a keyboard list beside it), the silent devices longest-silent first, the newest
// write-missing jobs and the fleet's points per minute. Reads GET /api/overview and its /positions, /silent, /jobs.
import uPlot from "uplot";
import { call, enc, getKey, ApiError, type Job } from "./api";
import { h, announce } from "./dom";
import { fmtAgo, fmtTime, fmtNumber } from "./format";
import { decodePositions, type Positions } from "./positions";
import { WorldMap, STATUS_COLORS } from "./worldmap";

export const OVERVIEW_RANGES = ["1d", "7d", "30d"] as const;
export type OverviewRange = (typeof OVERVIEW_RANGES)[number];

interface Counts {
  range: string;
  every: string;
  now: { time: string; online: number; late: number; silent: number; registered: number; pointsPerMinute: number } | null;
  series: { time: number[]; online: (number | null)[]; late: (number | null)[]; silent: (number | null)[]; registered: (number | null)[]; pointsPerMinute: (number | null)[] };
}

interface SilentPage {
  devices: { deviceId: string; lastSeen: string | null }[];
  total: number;
  next: string | null;
  updatedAt: string | null;
}

const LIST_PAGE = 25;
const SILENT_PAGE = 20;
const STATUS_LABEL = ["Online", "Late", "Silent", "Unknown"];
const TIMEOUT_MS = 30_000;

// fetchPositions reads the binary answer (the browser undoes the gzip Content-Encoding).
async function fetchPositions(): Promise<Positions> {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
  try {
    const res = await fetch("/api/overview/positions", { headers: { Authorization: `Bearer ${getKey()}` }, cache: "no-store", signal: ctl.signal });
    if (!res.ok) {
      let msg = res.statusText;
      try {
        msg = ((await res.json()) as { error?: string }).error ?? msg;
      } catch {
        /* not JSON */
      }
      throw new ApiError(res.status, `${res.status}: ${msg}`);
    }
    return decodePositions(await res.arrayBuffer());
  } finally {
    clearTimeout(timer);
  }
}

let views = 0;

const dashboardHref = (id: string) => `#/dashboard/${enc(id)}`;
const isoOf = (secs: number) => (secs ? new Date(secs * 1000).toISOString() : null);

export function overviewPage(root: HTMLElement, range: OverviewRange): void {
  document.title = "Fleet overview · IoT Center";
  const started = performance.now();
  const view = String(++views);
  root.dataset.overviewView = view;
  const current = () => root.dataset.overviewView === view && root.getAttribute("data-page") === "overview";
  for (const part of ["counts-ready", "map-ready", "silent-ready", "jobs-ready"]) {
    root.removeAttribute(`data-${part}`);
    root.removeAttribute(`data-${part}-view`);
  }
  const tiles = h("dl", { class: "tiles", id: "overview-counts", "aria-busy": "true" });
  const asOf = h("p", { class: "hint", id: "counts-as-of" }, "Loading the counts…");
  const plot = h("div", { class: "overview-plot", id: "counts-plot", role: "img", "aria-label": "Devices by status over the range" });
  const rate = h("div", { class: "overview-plot", id: "rate-plot", role: "img", "aria-label": "Points per minute over the range" });
  const ranges = h("div", { class: "ranges", role: "group", "aria-label": "Range" },
    ...OVERVIEW_RANGES.map((r) => h("a", { class: "chip", href: `#/overview?range=${r}`, "aria-current": r === range ? "true" : undefined, "data-range": r }, r)));
  const mapNote = h("p", { class: "hint", id: "map-note" }, "Loading the positions…");
  const map = new WorldMap({
    open: (i) => {
      if (positions) location.hash = dashboardHref(positions.id(i));
    },
    describe: (i) => (positions ? describe(positions, i) : ""),
  });
  map.el.id = "overview-map";
  const legend = h("ul", { class: "map-legend", "aria-label": "Marker colours" },
    ...STATUS_LABEL.slice(0, 3).map((l, s) => h("li", {}, h("span", { class: `status-dot s${s}`, "aria-hidden": "true" }), l)));

  // the keyboard list of the map's devices: search and status filter, LIST_PAGE at a time
  const search = h("input", { type: "search", id: "map-search", autocomplete: "off", spellcheck: "false", placeholder: "device id" });
  const statusSel = h("select", { id: "map-status" }, h("option", { value: "" }, "any status"),
    ...STATUS_LABEL.slice(0, 3).map((l, s) => h("option", { value: String(s) }, l)));
  const list = h("ul", { class: "map-list", id: "map-list" });
  const listCount = h("p", { class: "hint", id: "map-list-count", "aria-live": "polite" });
  const prev = h("button", { type: "button", class: "secondary", id: "map-prev" }, "‹ Previous");
  const next = h("button", { type: "button", class: "secondary", id: "map-next" }, "Next ›");
  let listPage = 0;

  const silentList = h("ul", { class: "silent-list", id: "silent-list" });
  const silentNote = h("p", { class: "hint", id: "silent-note" }, "Loading the silent devices…");
  const silentMore = h("button", { type: "button", class: "secondary", id: "silent-more", hidden: true }, "More silent devices");
  const jobsBody = h("tbody");
  const jobsNote = h("p", { class: "hint", id: "jobs-note" }, "Loading the recent jobs…");
  let silentNext: string | null = null;

  root.replaceChildren(
    h("h1", { class: "page-title" }, "Fleet overview"),
    h("section", { class: "card", "aria-labelledby": "counts-h" },
      h("div", { class: "card-head" }, h("h2", { id: "counts-h" }, "Status"), ranges),
      tiles, asOf, plot, h("h3", { class: "sub" }, "Points per minute"), rate),
    h("section", { class: "card", "aria-labelledby": "map-h" },
      h("div", { class: "card-head" }, h("h2", { id: "map-h" }, "Where the devices are"), legend),
      mapNote, map.el,
      h("h3", { class: "sub", id: "map-list-h" }, "The devices on the map"),
      h("div", { class: "filters" }, h("label", { for: "map-search" }, "Search"), search, h("label", { for: "map-status" }, "Status"), statusSel),
      listCount, list, h("nav", { class: "pager", "aria-label": "Map device list pages" }, prev, next)),
    h("section", { class: "card", "aria-labelledby": "silent-h" },
      h("h2", { id: "silent-h" }, "Silent devices, longest silent first"), silentNote, silentList, silentMore),
    h("section", { class: "card", "aria-labelledby": "jobs-h" },
      h("h2", { id: "jobs-h" }, "Recent write-missing jobs"), jobsNote,
      h("div", { class: "table-scroll", tabindex: 0, role: "region", "aria-label": "Recent jobs table (scrolls sideways)" }, h("table", { class: "jobs-table", id: "recent-jobs" },
        h("thead", {}, h("tr", {}, ...["Created", "State", "Devices", "Window", "Points planned", "Points written", "Chunks failed"].map((c) => h("th", { scope: "col" }, c)))),
        jobsBody))),
  );

  let positions: Positions | null = null;
  let matches: number[] = [];

  const renderList = () => {
    const p = positions;
    if (!p) return;
    const q = search.value.trim().toLowerCase();
    const want = statusSel.value === "" ? -1 : Number(statusSel.value);
    matches = [];
    for (let i = 0; i < p.n; i++) {
      if (want >= 0 && p.status[i] !== want) continue;
      if (q && !p.id(i).toLowerCase().includes(q)) continue;
      matches.push(i);
    }
    const pages = Math.max(1, Math.ceil(matches.length / LIST_PAGE));
    listPage = Math.min(listPage, pages - 1);
    const shown = matches.slice(listPage * LIST_PAGE, (listPage + 1) * LIST_PAGE);
    list.replaceChildren(...shown.map((i) => h("li", {},
      h("a", { href: dashboardHref(p.id(i)), "data-index": i, onfocus: () => map.mark(i), onblur: () => map.mark(-1), onmouseenter: () => map.mark(i), onmouseleave: () => map.mark(-1) },
        h("span", { class: `status-dot s${p.status[i]}`, "aria-hidden": "true" }), p.id(i)),
      h("span", { class: "muted" }, ` ${STATUS_LABEL[p.status[i]] ?? "Unknown"}, last seen ${fmtAgo(isoOf(p.lastSeen[i]))}`))));
    listCount.textContent = `${matches.length.toLocaleString("en-US")} of ${p.n.toLocaleString("en-US")} devices` +
      (matches.length ? `; showing ${listPage * LIST_PAGE + 1}–${listPage * LIST_PAGE + shown.length}, page ${listPage + 1} of ${pages}` : "");
    prev.disabled = listPage === 0;
    next.disabled = listPage >= pages - 1;
  };
  search.addEventListener("input", () => { listPage = 0; renderList(); });
  statusSel.addEventListener("change", () => { listPage = 0; renderList(); });
  prev.addEventListener("click", () => { listPage--; renderList(); (list.querySelector("a") as HTMLElement | null)?.focus(); });
  next.addEventListener("click", () => { listPage++; renderList(); (list.querySelector("a") as HTMLElement | null)?.focus(); });

  // each part marks the page when shown: ms since the document's navigation started, and since this view started
  const ready = (part: string) => {
    if (!current()) return; // a request of a view left since (its answer came late) marks nothing
    root.setAttribute(`data-${part}`, String(Math.round(performance.now())));
    root.setAttribute(`data-${part}-view`, String(Math.round(performance.now() - started)));
  };

  // the counts and the map first; the lists below the fold once both are in (or failed)
  const counts = call<Counts>("GET", `/api/overview?range=${range}`).then(({ data }) => {
    renderCounts(data, tiles, asOf, plot, rate);
    ready("counts-ready");
  }).catch((e) => {
    tiles.removeAttribute("aria-busy");
    asOf.textContent = `The counts could not be loaded (${(e as Error).message}).`;
    asOf.className = "error";
  });

  const located = fetchPositions().then((p) => {
    positions = p;
    const n = [0, 0, 0, 0];
    let placed = 0;
    for (let i = 0; i < p.n; i++) {
      n[Math.min(3, p.status[i])]++;
      if (!isNaN(p.lat[i]) && !isNaN(p.lon[i])) placed++;
    }
    const summary = `${p.n.toLocaleString("en-US")} devices, ${placed.toLocaleString("en-US")} with a position: ` +
      `${n[0].toLocaleString("en-US")} online, ${n[1].toLocaleString("en-US")} late, ${n[2].toLocaleString("en-US")} silent`;
    map.setData(p, `World map of the devices' last positions: ${summary}. The list below holds every device.`);
    mapNote.textContent = p.n ? `${summary}. Positions as of ${fmtTime(isoOf(p.updatedAt))}. Hover a marker to name it; click to open its dashboard.`
      : "No positions yet: the fleet-health run writes them every 5 minutes.";
    renderList();
    ready("map-ready");
  }).catch((e) => {
    mapNote.textContent = `The positions could not be loaded (${(e as Error).message}).`;
    mapNote.className = "error";
  });

  const loadSilent = async (more: boolean) => {
    silentMore.disabled = true;
    try {
      const q = new URLSearchParams({ limit: String(SILENT_PAGE) });
      if (more && silentNext) q.set("after", silentNext);
      const { data } = await call<SilentPage>("GET", `/api/overview/silent?${q}`);
      const items = data.devices.map((d) => h("li", {}, h("a", { href: dashboardHref(d.deviceId) }, d.deviceId),
        h("span", { class: "muted" }, d.lastSeen ? ` silent since ${fmtTime(d.lastSeen, false)} (${fmtAgo(d.lastSeen)})` : " never seen")));
      if (more) silentList.append(...items);
      else silentList.replaceChildren(...items);
      silentNext = data.next;
      silentMore.hidden = !data.next;
      silentNote.textContent = data.total === 0 ? "No silent device." :
        `${data.total.toLocaleString("en-US")} silent device${data.total === 1 ? "" : "s"}; showing ${silentList.children.length.toLocaleString("en-US")}.`;
      if (more) items[0]?.querySelector("a")?.focus();
      ready("silent-ready");
    } catch (e) {
      silentNote.textContent = `The silent devices could not be loaded (${(e as Error).message}).`;
      silentNote.className = "error";
    } finally {
      silentMore.disabled = false;
    }
  };
  const loadJobs = () => call<{ jobs: Job[] }>("GET", "/api/overview/jobs?limit=10").then(({ data }) => {
    const jobs = data.jobs ?? [];
    jobsNote.textContent = jobs.length ? `The ${jobs.length} newest jobs, newest first.` : "No write-missing job in the last days.";
    jobsBody.replaceChildren(...jobs.map((j) => h("tr", { "data-job": j.jobId, "data-state": j.state },
      h("td", {}, fmtTime(j.createdAt, false)), h("td", { class: `job-state ${j.state}` }, j.state),
      h("td", {}, fmtNumber(j.devices ?? null, 0)), h("td", {}, `${fmtTime(j.from, false)} – ${fmtTime(j.to, false)}`),
      h("td", {}, fmtNumber(j.pointsPlanned ?? null, 0)), h("td", {}, fmtNumber(j.pointsWritten ?? null, 0)),
      h("td", {}, fmtNumber(j.chunksFailed ?? null, 0)))));
    ready("jobs-ready");
  }).catch((e) => {
    jobsNote.textContent = `The recent jobs could not be loaded (${(e as Error).message}).`;
    jobsNote.className = "error";
  });
  silentMore.addEventListener("click", () => void loadSilent(true));
  void Promise.allSettled([counts, located]).then(() => {
    if (!current()) return;
    void loadSilent(false);
    void loadJobs();
  });
  announce("Fleet overview");
}

function describe(p: Positions, i: number): string {
  const seen = p.lastSeen[i] ? `last seen ${fmtTime(isoOf(p.lastSeen[i]))} (${fmtAgo(isoOf(p.lastSeen[i]))})` : "never seen";
  return `${p.id(i)} · ${STATUS_LABEL[p.status[i]] ?? "Unknown"} · ${seen}`;
}

const TILE_TEXT: [keyof NonNullable<Counts["now"]>, string, string][] = [
  ["online", "Online", "online"], ["late", "Late", "late"], ["silent", "Silent", "silent"], ["registered", "Registered", ""], ["pointsPerMinute", "Points / min", ""],
];

function renderCounts(c: Counts, tiles: HTMLElement, asOf: HTMLElement, plot: HTMLElement, rate: HTMLElement): void {
  tiles.removeAttribute("aria-busy");
  tiles.replaceChildren(...TILE_TEXT.map(([k, label, cls]) => h("div", { class: `tile ${cls}`, "data-count": k },
    h("dt", {}, label), h("dd", {}, c.now ? fmtNumber(c.now[k] as number, 0) : "—"))));
  asOf.textContent = c.now ? `As of the fleet-health run at ${fmtTime(c.now.time)}; the plot shows the last value of every ${c.every.replace(/0s$/, "").replace(/h0m$/, "h")} window.`
    : "No fleet-health run has written counts yet (it runs every 5 minutes).";
  const xs = c.series.time.map((t) => t / 1000);
  const width = Math.max(240, Math.floor(plot.clientWidth || 600));
  const axes = [{ stroke: "#374151", grid: { stroke: "#e5e7eb" } }, { stroke: "#374151", grid: { stroke: "#e5e7eb" }, size: 60 }];
  plot.replaceChildren();
  rate.replaceChildren();
  if (!xs.length) {
    plot.append(h("p", { class: "empty" }, "No counts in this range."));
    return;
  }
  new uPlot({
    width, height: 200, tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"), axes,
    series: [{}, { label: "Online", stroke: STATUS_COLORS[0], width: 2 }, { label: "Late", stroke: STATUS_COLORS[1], width: 2 },
      { label: "Silent", stroke: STATUS_COLORS[2], width: 2 }, { label: "Registered", stroke: "#364fc7", width: 1, dash: [4, 4] }],
  }, [xs, c.series.online, c.series.late, c.series.silent, c.series.registered] as uPlot.AlignedData, plot);
  new uPlot({
    width, height: 140, tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"), axes,
    series: [{}, { label: "Points / min", stroke: "#7048e8", width: 2 }],
  }, [xs, c.series.pointsPerMinute] as uPlot.AlignedData, rate);
}

