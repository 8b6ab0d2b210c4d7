// Write-missing progress: POST the plan, then poll the coverage of exactly the window the 202 returned until 100%.
import { call, enc, ApiError, type Coverage, type Plan } from "./api";
import { h, fmtDuration, fmtNumber } from "./dom";

const POLL_MS = 1000;
// Bounds of one watch: a backfill that stalls longer than this is reported, not polled forever.
const MAX_WAIT_MS = 15 * 60_000;
const MAX_CONSECUTIVE_ERRORS = 5;

export interface Target {
  deviceId?: string; // undefined: all devices
  days: number;
}

export class ProgressView {
  readonly el: HTMLElement;
  private bar: HTMLElement;
  private fill: HTMLElement;
  private label: HTMLElement;
  private detail: HTMLElement;
  private stopped = false;

  constructor(title: string) {
    this.fill = h("div", { class: "bar-fill" });
    this.bar = h("div", { class: "bar", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": 0, "data-percent": 0 }, this.fill);
    this.label = h("span", { class: "bar-label" }, "planning…");
    this.detail = h("div", { class: "progress-detail" });
    const close = h("button", { class: "link", title: "hide", onclick: () => this.close() }, "×");
    this.el = h("div", { class: "progress", "data-state": "planning" }, h("div", { class: "progress-head" }, h("strong", {}, title), this.label, close), this.bar, this.detail);
  }

  close(): void {
    this.stopped = true;
    this.el.remove();
  }

  private set(percent: number, state: string, label: string, detail: string): void {
    const p = Math.max(0, Math.min(100, percent));
    this.fill.style.width = `${p}%`;
    this.bar.setAttribute("aria-valuenow", String(Math.floor(p)));
    this.bar.setAttribute("data-percent", String(p));
    this.el.setAttribute("data-state", state);
    this.label.textContent = label;
    this.detail.textContent = detail;
  }

  async run(t: Target): Promise<void> {
    const started = performance.now();
    const elapsed = () => fmtDuration(performance.now() - started);
    const base = t.deviceId ? `/api/devices/${enc(t.deviceId)}/write-missing` : "/api/write-missing";
    let plan: Plan;
    try {
      // No body for the default window (7 days), so the request works whatever optional fields a route accepts.
      plan = (await call<Plan>("POST", base, t.days === 7 ? undefined : { days: t.days })).data;
    } catch (e) {
      this.set(0, "error", "failed", (e as Error).message);
      return;
    }
    const planned = plan.missing;
    if (planned === 0) {
      this.set(100, "done", "100 %", `nothing missing between ${plan.from} and ${plan.to} · ${elapsed()}`);
      return;
    }
    const what = plan.devices ? `${plan.devices.length} devices, ` : "";
    this.set(0, "running", "0 %", `${what}${fmtNumber(planned, 0)} points missing, ${plan.chunks} chunks dispatched · ${elapsed()}`);
    const q = `?from=${enc(plan.from)}&to=${enc(plan.to)}`;
    let errors = 0;
    while (!this.stopped) {
      if (performance.now() - started > MAX_WAIT_MS) {
        this.el.setAttribute("data-state", "error");
        this.label.textContent = "stalled";
        return;
      }
      await sleep(POLL_MS);
      let cov: Coverage;
      try {
        cov = (await call<Coverage>("GET", base + q)).data;
        errors = 0;
      } catch (e) {
        errors++;
        if (errors >= MAX_CONSECUTIVE_ERRORS || (e instanceof ApiError && e.status >= 400 && e.status < 500)) {
          this.set(0, "error", "failed", (e as Error).message);
          return;
        }
        continue;
      }
      const written = Math.max(0, planned - cov.missing);
      const done = cov.percent >= 100;
      this.set(cov.percent, done ? "done" : "running", `${fmtNumber(cov.percent, 1)} %`,
        `${fmtNumber(written, 0)} of ${fmtNumber(planned, 0)} missing points written · ${fmtNumber(cov.present, 0)}/${fmtNumber(cov.expected, 0)} minutes covered · ${elapsed()}`);
      if (done) return;
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
