// Short results that need no panel (a deletion, a refused input): a message fixed to the bottom of the viewport, so
// it is always seen, and read out by screen readers (status for news, alert for errors).
import { h } from "./dom";

let box: HTMLElement | null = null;
let timer = 0;

export function toast(msg: string, kind: "ok" | "error" = "ok"): void {
  box?.remove();
  const close = h("button", { type: "button", class: "link", "aria-label": "Dismiss message" }, "×");
  const el = h("div", { class: `toast ${kind}`, id: "toast", role: kind === "error" ? "alert" : "status" }, h("span", {}, kind === "error" ? "⚠ " : "✓ ", msg), close);
  close.addEventListener("click", () => el.remove());
  document.body.append(el);
  box = el;
  clearTimeout(timer);
  timer = window.setTimeout(() => el.remove(), kind === "error" ? 15_000 : 8_000);
}
