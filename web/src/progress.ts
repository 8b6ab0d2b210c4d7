// Write-missing backfills as tracked jobs: POST starts one (or the API hands back the job already running for the same
// devices and window), then GET /api/write-missing/jobs/{jobId} is polled. Percent = points written / points planned.
// Running jobs are kept in sessionStorage, so a reload picks them up again.
import { call, enc, ApiError, type Job } from "./api";
import { h } from "./dom";
import { confirmAction } from "./panel";
import { fmtDuration, fmtNumber, fmtTime } from "./format";

const POLL_MS = 1000;
const MAX_WAIT_MS = 30 * 60_000; // without a deadline from the job, a watch ends here instead of polling forever
const MAX_CONSECUTIVE_ERRORS = 8;
const STORAGE = "iot-center.jobs";
const ETA_WINDOW_MS = 30_000;

export interface Target {
  deviceId?: string; // undefined: all devices
  days: number;
}

export type State = "planning" | "running" | "done" | "failed" | "cancelled";

// Saved is what sessionStorage keeps of a running backfill.
interface Saved {
  key: string;
  target: Target;
  started: number;
  jobId?: string;
  jobPath?: string;
}

export interface Snapshot {
  state: State;
  percent: number | null;
  devices?: number;
  devicesDone?: number;
  chunks?: number;
  chunksDone?: number;
  chunksFailed?: number;
  planned?: number;
  written?: number;
  from?: string;
  to?: string;
  etaMs?: number | null;
  note: string;
}

export const targetKey = (t: Target) => `${t.deviceId ? `device:${t.deviceId}` : "all"}:${t.days}`;
export const targetName = (t: Target) => `${t.deviceId ? t.deviceId : "all devices"}, last ${t.days} day${t.days > 1 ? "s" : ""}`;

export class Backfill {
  snap: Snapshot = { state: "planning", percent: null, note: "planning: finding the missing minutes…" };
  private listeners = new Set<() => void>();
  private samples: { t: number; w: number }[] = [];

  constructor(readonly saved: Saved) {}

  get target(): Target {
    return this.saved.target;
  }

  get finished(): boolean {
    return this.snap.state === "done" || this.snap.state === "failed" || this.snap.state === "cancelled";
  }

  // cancel asks the API to stop the job: its queued tasks write nothing, what was written stays (and is shown).
  async cancel(): Promise<void> {
    if (!this.saved.jobPath || this.finished) return;
    try {
      this.fromJob((await call<Job>("POST", `${this.saved.jobPath}/cancel`)).data);
    } catch (e) {
      if (e instanceof ApiError && e.status === 409) {
        this.update({ note: "The job had already ended." });
        return;
      }
      this.update({ note: `Cancelling failed: ${(e as Error).message}` });
    }
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private update(s: Partial<Snapshot>): void {
    this.snap = { ...this.snap, ...s };
    if (this.finished) persist();
    for (const fn of [...this.listeners]) fn();
  }

  // eta estimates the time left from the write rate over the last half minute.
  private eta(written: number, planned: number): number | null {
    const now = Date.now();
    this.samples.push({ t: now, w: written });
    while (this.samples.length > 2 && now - this.samples[0].t > ETA_WINDOW_MS) this.samples.shift();
    const first = this.samples[0];
    const rate = (written - first.w) / (now - first.t); // points per ms
    if (!(rate > 0) || written >= planned) return written >= planned ? 0 : null;
    return (planned - written) / rate;
  }

  async start(): Promise<void> {
    const t = this.target;
    const base = t.deviceId ? `/api/devices/${enc(t.deviceId)}/write-missing` : "/api/write-missing";
    try {
      const res = await call<Job>("POST", base, { days: t.days });
      const d = res.data;
      if (!d || typeof d.jobId !== "string") throw new Error("the API answered without a job");
      const loc = res.headers.get("Location");
      this.saved.jobId = d.jobId;
      this.saved.jobPath = loc && loc.startsWith("/api/") ? loc : `/api/write-missing/jobs/${enc(d.jobId)}`;
      persist();
      this.fromJob(d);
      if (!this.finished) await this.pollJob();
    } catch (e) {
      this.update({ state: "failed", note: (e as Error).message });
    }
  }

  // resume picks a saved backfill up again after a reload.
  async resume(): Promise<void> {
    if (this.saved.jobPath) await this.pollJob();
    else this.update({ state: "failed", note: "The page was reloaded before the backfill answered; start it again to follow it." });
  }

  private fromJob(j: Job): void {
    const planned = j.pointsPlanned ?? 0;
    // a count past the plan (a chunk task delivered twice counts its points twice) is shown as the plan
    const written = planned > 0 ? Math.min(j.pointsWritten ?? 0, planned) : j.pointsWritten ?? 0;
    const state: State = j.state === "done" || j.state === "failed" || j.state === "planning" || j.state === "cancelled" ? j.state : "running";
    let percent: number | null = null;
    if (state === "done") percent = 100;
    else if (state !== "planning" && planned > 0) percent = (100 * written) / planned;
    else if (state === "running" && planned === 0) percent = 100;
    const note =
      state === "planning" ? "planning: finding the missing minutes…"
      : state === "failed" ? (j.error ?? "The backfill failed.")
      : state === "done" && planned === 0 ? "Nothing was missing in this window."
      : state === "cancelled" ? `Cancelled: the ${fmtNumber(written, 0)} points written by then stay; asking again fills what is still missing.`
      : "";
    this.update({
      state, percent, planned, written, note,
      devices: j.devices, devicesDone: j.devicesDone, chunks: j.chunks, chunksDone: j.chunksDone, chunksFailed: j.chunksFailed,
      from: j.from, to: j.to,
      etaMs: state === "running" ? this.eta(written, planned) : state === "done" || state === "cancelled" ? 0 : null,
    });
  }

  private async poll(step: () => Promise<boolean>, deadline: number): Promise<void> {
    let errors = 0;
    while (!this.finished) {
      if (Date.now() > deadline) {
        this.update({ state: "failed", note: "No progress report for too long; the backfill may still finish. Check the dashboard later." });
        return;
      }
      await sleep(POLL_MS);
      try {
        if (await step()) return;
        errors = 0;
      } catch (e) {
        errors++;
        const fatal = e instanceof ApiError && e.status >= 400 && e.status < 500 && e.status !== 429;
        if (fatal || errors >= MAX_CONSECUTIVE_ERRORS) {
          this.update({ state: "failed", note: (e as Error).message });
          return;
        }
        this.update({ note: `Progress not readable just now (${(e as Error).message}); retrying.` });
      }
    }
  }

  private async pollJob(): Promise<void> {
    const path = this.saved.jobPath!;
    let deadline = this.saved.started + MAX_WAIT_MS;
    await this.poll(async () => {
      const j = (await call<Job>("GET", path)).data;
      const dl = j.deadline ? Date.parse(j.deadline) : NaN;
      if (!isNaN(dl)) deadline = Math.max(deadline, dl + 60_000);
      this.fromJob(j);
      return this.finished;
    }, deadline);
  }
}

// All backfills this tab knows about, by target key: a second start for the same target and window returns the one
// already running.
const all = new Map<string, Backfill>();
const changed = new Set<() => void>();

function persist(): void {
  const running = [...all.values()].filter((b) => !b.finished).map((b) => b.saved);
  if (running.length) sessionStorage.setItem(STORAGE, JSON.stringify(running));
  else sessionStorage.removeItem(STORAGE);
}

function notify(): void {
  for (const fn of [...changed]) fn();
}

export function onBackfillsChanged(fn: () => void): () => void {
  changed.add(fn);
  return () => changed.delete(fn);
}

export function backfills(): Backfill[] {
  return [...all.values()];
}

export function running(t: Target): Backfill | undefined {
  const b = all.get(targetKey(t));
  return b && !b.finished ? b : undefined;
}

export function startBackfill(t: Target): Backfill {
  const existing = running(t);
  if (existing) return existing;
  const b = new Backfill({ key: targetKey(t), target: t, started: Date.now() });
  all.set(b.saved.key, b);
  b.subscribe(notify);
  persist();
  notify();
  void b.start();
  return b;
}

// resumeBackfills picks up the backfills saved by this tab before a reload.
export function resumeBackfills(): void {
  let saved: Saved[] = [];
  try {
    saved = JSON.parse(sessionStorage.getItem(STORAGE) ?? "[]") as Saved[];
  } catch {
    saved = [];
  }
  for (const s of Array.isArray(saved) ? saved : []) {
    if (!s || typeof s.key !== "string" || all.has(s.key) || !s.target) continue;
    const b = new Backfill(s);
    b.snap = { ...b.snap, state: "running", note: "picked up again after the page was loaded" };
    all.set(s.key, b);
    b.subscribe(notify);
    void b.resume();
  }
  notify();
}

// progressView renders a backfill and keeps itself current until it leaves the page.
export function progressView(b: Backfill): HTMLElement {
  const fill = h("div", { class: "bar-fill" });
  const label = h("span", { class: "bar-label" });
  const bar = h("div", { class: "bar", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-label": `Backfill of ${targetName(b.target)}` }, fill);
  const facts = h("dl", { class: "facts" });
  const note = h("p", { class: "progress-note", role: "status" });
  const cancel = h("button", { type: "button", class: "danger", id: "cancel-job" }, "Cancel job…");
  cancel.addEventListener("click", async () => {
    const ok = await confirmAction({
      title: `Cancel the backfill of ${targetName(b.target)}?`,
      body: ["It stops: the work still queued writes nothing. The points written by then stay (and are shown); asking again fills what is still missing."],
      confirm: "Cancel job",
      danger: true,
    });
    if (ok) await b.cancel();
  });
  const el = h("div", { class: "progress", "data-key": b.saved.key, "data-device": b.target.deviceId ?? "" },
    h("div", { class: "progress-head" }, label, cancel), bar, facts, note);
  const render = () => {
    if (!el.isConnected && el.dataset.rendered) {
      stop();
      return;
    }
    el.dataset.rendered = "1";
    const s = b.snap;
    const p = s.percent === null ? null : Math.max(0, Math.min(100, s.percent));
    el.setAttribute("data-state", s.state);
    fill.style.width = `${p ?? 0}%`;
    bar.classList.toggle("indeterminate", p === null);
    if (p === null) {
      bar.removeAttribute("aria-valuenow");
      bar.setAttribute("aria-valuetext", s.state);
    } else {
      bar.setAttribute("aria-valuenow", String(Math.floor(p)));
      bar.setAttribute("aria-valuetext", `${fmtNumber(p, 1)} %`);
    }
    bar.setAttribute("data-percent", p === null ? "" : String(p));
    const stateText = { planning: "Planning…", running: "Running", done: "Done ✓", failed: "Failed ✕", cancelled: "Cancelled ■" }[s.state];
    cancel.hidden = b.finished;
    cancel.disabled = !b.saved.jobPath;
    label.textContent = p === null ? stateText : `${stateText} · ${fmtNumber(p, 1)} %`;
    const rows: [string, string][] = [];
    if (s.planned !== undefined) rows.push(["Points written", `${fmtNumber(s.written ?? 0, 0)} of ${fmtNumber(s.planned, 0)}`]);
    if (s.devices !== undefined) rows.push(["Devices done", s.devicesDone !== undefined ? `${fmtNumber(s.devicesDone, 0)} of ${fmtNumber(s.devices, 0)}` : `${fmtNumber(s.devices, 0)} devices`]);
    if (s.chunks !== undefined) rows.push(["Chunks", `${s.chunksDone !== undefined ? `${fmtNumber(s.chunksDone, 0)} of ` : ""}${fmtNumber(s.chunks, 0)}${s.chunksFailed !== undefined ? `, ${fmtNumber(s.chunksFailed, 0)} failed` : ""}`]);
    rows.push(["Time left", s.state === "done" || s.state === "cancelled" ? "none" : s.state === "failed" ? "—" : s.etaMs == null ? "estimating…" : `about ${fmtDuration(s.etaMs)}`]);
    rows.push(["Elapsed", fmtDuration(Date.now() - b.saved.started)]);
    if (s.from && s.to) rows.push(["Window", `${fmtTime(s.from, false)} to ${fmtTime(s.to, false)}`]);
    facts.replaceChildren(...rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", { "data-fact": k }, v)]));
    if (s.chunksFailed) facts.querySelector('[data-fact="Chunks"]')?.classList.add("bad");
    note.textContent = s.note;
  };
  const stop = b.subscribe(render);
  render();
  return el;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
