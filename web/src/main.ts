// IoT Center dashboard: a hash-routed single page (#/devices, #/dashboard/{id}?range=7d) over the operator API.
import "uplot/dist/uPlot.min.css";
import "./style.css";
import { getKey, setKey } from "./api";
import { h, clear } from "./dom";
import { devicesPage } from "./devices";
import { dashboardPage, RANGES, type Range } from "./dashboard";

const main = h("main", { id: "view" });
const flashBox = h("div", { id: "flash", role: "status" });
let flashTimer = 0;

function flash(msg: string, kind: "error" | "ok" = "ok"): void {
  flashBox.textContent = msg;
  flashBox.className = `flash ${kind}`;
  clearTimeout(flashTimer);
  flashTimer = window.setTimeout(() => (flashBox.className = "flash hidden"), kind === "error" ? 10_000 : 4_000);
}

function header(): HTMLElement {
  const key = h("input", { type: "password", id: "operator-key", placeholder: "operator key", autocomplete: "off" });
  key.value = getKey(); // the property, not the attribute: the key stays out of the serialized DOM
  const save = (ev: Event) => {
    ev.preventDefault();
    setKey(key.value.trim());
    flash(key.value.trim() ? "Operator key kept for this tab." : "Operator key cleared.", "ok");
    route();
  };
  return h("header", {},
    h("h1", {}, h("a", { href: "#/devices" }, "IoT Center")),
    h("nav", {}, h("a", { href: "#/devices", id: "nav-devices" }, "Devices"), h("a", { href: "#/dashboard/", id: "nav-dashboard" }, "Dashboard")),
    h("form", { class: "key", onsubmit: save }, key, h("button", { type: "submit", id: "save-key" }, "Use key")));
}

function route(): void {
  const hash = location.hash || "#/devices";
  const [path, query] = hash.slice(1).split("?", 2);
  const params = new URLSearchParams(query ?? "");
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", hash.startsWith((a as HTMLAnchorElement).getAttribute("href")!.replace(/\/$/, "")));
  const dash = /^\/dashboard\/?(.*)$/.exec(path);
  if (dash) {
    let id = "";
    try {
      id = decodeURIComponent(dash[1]);
    } catch {
      id = "";
    }
    const r = params.get("range");
    const range: Range = (RANGES as readonly string[]).includes(r ?? "") ? (r as Range) : "1d";
    main.setAttribute("data-page", "dashboard");
    dashboardPage(main, id, range);
    return;
  }
  main.setAttribute("data-page", "devices");
  devicesPage(main, flash);
}

const app = document.getElementById("app") ?? document.body;
clear(app);
app.append(header(), flashBox, main);
window.addEventListener("hashchange", route);
route();
