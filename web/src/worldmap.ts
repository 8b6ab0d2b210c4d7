// A canvas map of every device's last position, coloured by status, over a vector world outline shipped in the
// bundle (Natural Earth 110m land from world-atlas: no tile server). Markers are drawn as one path per status and
// found again through a uniform grid (the spatial index), so 100,000 markers draw in a frame and hover stays cheap.
import { geoNaturalEarth1, geoPath, geoGraticule10 } from "d3-geo";
import { feature } from "topojson-client";
import land110 from "world-atlas/land-110m.json";
import type { Positions } from "./positions";

export const STATUS_COLORS = ["#2b8a3e", "#d9480f", "#c92a2a", "#6b7280"]; // online, late, silent, unknown
// Drawing order: the healthy first, so a silent device is never hidden under an online one.
const DRAW_ORDER = [3, 0, 1, 2];
const CELL = 8; // px of a grid cell of the index
const HIT = 7; // px: how far from a marker the pointer still finds it

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const LAND = feature(land110 as any, (land110 as any).objects.land);

export interface MapHandlers {
  open(i: number): void;
  describe(i: number): string;
}

export class WorldMap {
  readonly el: HTMLDivElement;
  private canvas: HTMLCanvasElement;
  private tip: HTMLDivElement;
  private data: Positions | null = null;
  private xs = new Float32Array(0);
  private ys = new Float32Array(0);
  private cellStart = new Int32Array(0);
  private cellItems = new Int32Array(0);
  private cols = 0;
  private rows = 0;
  private w = 0;
  private base: HTMLCanvasElement | null = null;
  private hot = -1;
  private marked = -1;
  private frame = 0;

  constructor(private handlers: MapHandlers) {
    this.canvas = document.createElement("canvas");
    this.canvas.className = "world-map";
    this.canvas.setAttribute("role", "img");
    this.canvas.setAttribute("aria-label", "World map of the devices' last positions (loading)");
    this.tip = document.createElement("div");
    this.tip.className = "map-tip";
    this.tip.hidden = true;
    this.tip.setAttribute("aria-hidden", "true");
    this.el = document.createElement("div");
    this.el.className = "map-wrap";
    this.el.append(this.canvas, this.tip);
    this.canvas.addEventListener("pointermove", (ev) => this.pointer(ev));
    this.canvas.addEventListener("pointerleave", () => this.setHot(-1, 0, 0));
    this.canvas.addEventListener("click", (ev) => {
      // the device the tooltip names, when there is one (a click's coordinates may round to a neighbour's)
      const i = this.hot >= 0 ? this.hot : this.nearest(ev.offsetX, ev.offsetY);
      if (i >= 0) this.handlers.open(i);
    });
    new ResizeObserver(() => this.schedule()).observe(this.el);
    // For tests and tools: where a device is drawn, in CSS pixels from the canvas' top left (null: not drawn).
    Object.defineProperty(this.canvas, "locate", {
      value: (id: string) => {
        const d = this.data;
        if (!d) return null;
        for (let i = 0; i < d.n; i++) if (d.id(i) === id && !isNaN(this.xs[i])) return { x: this.xs[i], y: this.ys[i] };
        return null;
      },
    });
  }

  setData(p: Positions, label: string): void {
    this.data = p;
    this.canvas.setAttribute("aria-label", label);
    this.layout();
    this.draw();
  }

  // mark rings one device (the list's focused entry); -1 clears it.
  mark(i: number): void {
    this.marked = i;
    this.draw();
  }

  private schedule(): void {
    cancelAnimationFrame(this.frame);
    this.frame = requestAnimationFrame(() => {
      this.layout();
      this.draw();
    });
  }

  private layout(): void {
    const w = Math.max(200, Math.floor(this.el.clientWidth));
    const h = Math.round(w * 0.52);
    const sized = w !== this.w || !this.base;
    this.w = w;
    const dpr = Math.min(2, window.devicePixelRatio || 1);
    const projection = geoNaturalEarth1().fitExtent([[2, 2], [w - 2, h - 2]], { type: "Sphere" });
    if (sized) {
      this.canvas.width = Math.round(w * dpr);
      this.canvas.height = Math.round(h * dpr);
      this.canvas.style.height = `${h}px`;
      const base = document.createElement("canvas");
      base.width = this.canvas.width;
      base.height = this.canvas.height;
      const ctx = base.getContext("2d")!;
      ctx.scale(dpr, dpr);
      const path = geoPath(projection, ctx);
      ctx.beginPath();
      path({ type: "Sphere" });
      ctx.fillStyle = "#eef3f8";
      ctx.fill();
      ctx.beginPath();
      path(geoGraticule10());
      ctx.strokeStyle = "#dde5ee";
      ctx.lineWidth = 0.5;
      ctx.stroke();
      ctx.beginPath();
      path(LAND);
      ctx.fillStyle = "#d4d9e1";
      ctx.fill();
      ctx.strokeStyle = "#b6bec9";
      ctx.lineWidth = 0.6;
      ctx.stroke();
      this.base = base;
    }
    const d = this.data;
    if (!d) return;
    const n = d.n;
    this.xs = new Float32Array(n);
    this.ys = new Float32Array(n);
    this.cols = Math.ceil(w / CELL);
    this.rows = Math.ceil(h / CELL);
    const counts = new Int32Array(this.cols * this.rows + 1);
    const cellOf = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const lat = d.lat[i];
      const lon = d.lon[i];
      const p = isNaN(lat) || isNaN(lon) ? null : projection([lon, lat]);
      if (!p) {
        this.xs[i] = this.ys[i] = NaN;
        cellOf[i] = -1;
        continue;
      }
      this.xs[i] = p[0];
      this.ys[i] = p[1];
      const c = Math.min(this.rows - 1, Math.max(0, Math.floor(p[1] / CELL))) * this.cols + Math.min(this.cols - 1, Math.max(0, Math.floor(p[0] / CELL)));
      cellOf[i] = c;
      counts[c + 1]++;
    }
    for (let c = 1; c < counts.length; c++) counts[c] += counts[c - 1];
    this.cellStart = counts;
    const fill = counts.slice(0, -1);
    this.cellItems = new Int32Array(counts[counts.length - 1]);
    for (let i = 0; i < n; i++) if (cellOf[i] >= 0) this.cellItems[fill[cellOf[i]]++] = i;
  }

  private draw(): void {
    const ctx = this.canvas.getContext("2d");
    if (!ctx || !this.base) return;
    const dpr = this.canvas.width / this.w;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.drawImage(this.base, 0, 0);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const d = this.data;
    if (!d) return;
    const r = d.n > 20000 ? 1 : 1.5;
    let drawn = 0;
    for (const s of DRAW_ORDER) {
      ctx.beginPath();
      for (let i = 0; i < d.n; i++) {
        if (d.status[i] !== s || isNaN(this.xs[i])) continue;
        ctx.rect(this.xs[i] - r, this.ys[i] - r, 2 * r, 2 * r);
        drawn++;
      }
      ctx.fillStyle = STATUS_COLORS[s] ?? STATUS_COLORS[3];
      ctx.fill();
    }
    for (const [i, color] of [[this.marked, "#1d4ed8"], [this.hot, "#111827"]] as [number, string][]) {
      if (i < 0 || i >= d.n || isNaN(this.xs[i])) continue;
      ctx.beginPath();
      ctx.arc(this.xs[i], this.ys[i], 6, 0, 2 * Math.PI);
      ctx.lineWidth = 2;
      ctx.strokeStyle = color;
      ctx.stroke();
    }
    this.canvas.dataset.drawn = String(drawn);
    this.canvas.dataset.devices = String(d.n);
  }

  // nearest is the device drawn closest to (x, y) within HIT px, from the grid cells around it; -1: none.
  private nearest(x: number, y: number): number {
    if (!this.data || !this.cols) return -1;
    const cx = Math.floor(x / CELL);
    const cy = Math.floor(y / CELL);
    let best = -1;
    let bestD = HIT * HIT;
    for (let gy = cy - 1; gy <= cy + 1; gy++) {
      if (gy < 0 || gy >= this.rows) continue;
      for (let gx = cx - 1; gx <= cx + 1; gx++) {
        if (gx < 0 || gx >= this.cols) continue;
        const c = gy * this.cols + gx;
        for (let k = this.cellStart[c]; k < this.cellStart[c + 1]; k++) {
          const i = this.cellItems[k];
          const dx = this.xs[i] - x;
          const dy = this.ys[i] - y;
          const dd = dx * dx + dy * dy;
          // ties go to the worse status (drawn on top)
          if (dd < bestD || (dd === bestD && best >= 0 && this.data.status[i] > this.data.status[best])) {
            bestD = dd;
            best = i;
          }
        }
      }
    }
    return best;
  }

  private pointer(ev: PointerEvent): void {
    this.setHot(this.nearest(ev.offsetX, ev.offsetY), ev.offsetX, ev.offsetY);
  }

  private setHot(i: number, x: number, y: number): void {
    this.canvas.style.cursor = i >= 0 ? "pointer" : "default";
    if (i >= 0) {
      this.tip.textContent = this.handlers.describe(i);
      this.tip.hidden = false;
      const left = Math.min(x + 12, this.w - this.tip.offsetWidth - 4);
      this.tip.style.left = `${Math.max(4, left)}px`;
      this.tip.style.top = `${y > 40 ? y - 34 : y + 14}px`;
    } else {
      this.tip.hidden = true;
    }
    if (i !== this.hot) {
      this.hot = i;
      this.draw();
    }
  }
}
