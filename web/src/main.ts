// IoT Center dashboard: a hash-routed single page (#/overview, the home; #/devices; #/dashboard/{id}?range=7d) over the
// operator API.
import "uplot/dist/uPlot.min.css";
import "./style.css";
import { getKey, setKey, checkKey } from "./api";
import { h, announce } from "./dom";
import { devicesPage } from "./devices";
import { dashboardPage, RANGES, type Range } from "./dashboard";
import { resumeBackfills } from "./progress";
import { overviewPage, OVERVIEW_RANGES, type OverviewRange } from "./overview";

const main = h("main", { id: "view", tabindex: -1 });
const keyNote = h("p", { id: "key-note", class: "key-note", role: "status" });

function header(): HTMLElement {
  const key = h("input", { type: "password", id: "operator-key", name: "operatorKey", autocomplete: "off", "aria-describedby": "key-note" });
  key.value = getKey(); // the property, not the attribute: the key stays out of the serialized DOM
  const save = h("button", { type: "submit", id: "save-key" }, "Use key");
  const submit = async (ev: Event) => {
    ev.preventDefault();
    const k = key.value.trim();
    if (!k) {
      setKey("");
      keyNote.textContent = "Operator key cleared.";
      keyNote.className = "key-note";
      route();
      return;
    }
    save.disabled = true;
    keyNote.textContent = "Checking the key with the API…";
    keyNote.className = "key-note";
    const verdict = await checkKey(k);
    save.disabled = false;
    if (verdict === "ok") {
      setKey(k);
      key.removeAttribute("aria-invalid");
      keyNote.textContent = "✓ Key accepted by the API; kept for this tab only.";
      keyNote.className = "key-note ok";
      route();
    } else {
      key.setAttribute("aria-invalid", "true");
      keyNote.textContent = verdict === "refused" ? "✕ The API refused this key; it was not kept." : `✕ The key could not be checked (${verdict}); it was not kept.`;
      keyNote.className = "key-note error";
      key.focus();
    }
  };
  return h("header", {},
    h("a", { class: "skip", href: "#view", onclick: (ev: Event) => { ev.preventDefault(); main.focus(); } }, "Skip to content"),
    h("p", { class: "brand" }, h("a", { href: "#/overview" }, "IoT Center")),
    h("nav", { "aria-label": "Views" }, h("a", { href: "#/overview", id: "nav-overview" }, "Overview"), h("a", { href: "#/devices", id: "nav-devices" }, "Devices"), h("a", { href: "#/dashboard/", id: "nav-dashboard" }, "Dashboard")),
    h("form", { class: "key", onsubmit: (ev: Event) => void submit(ev) },
      h("label", { for: "operator-key" }, "Operator key"), key, save, keyNote));
}

function route(): void {
  const hash = location.hash || "#/overview";
  const [path, query] = hash.slice(1).split("?", 2);
  const params = new URLSearchParams(query ?? "");
  const dash = /^\/dashboard\/?(.*)$/.exec(path);
  const home = !dash && path !== "/devices";
  for (const a of document.querySelectorAll("nav a")) {
    const on = a.id === (dash ? "nav-dashboard" : home ? "nav-overview" : "nav-devices");
    a.classList.toggle("active", on);
    if (on) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (!getKey()) {
    document.title = "Operator key needed · IoT Center";
    main.setAttribute("data-page", "key");
    main.replaceChildren(h("h1", { class: "page-title" }, "Operator key needed"),
      h("section", { class: "card notice" }, h("p", {}, "Enter the operator key above. It is checked with the API, then kept in this tab only and sent in the Authorization header.")));
    return;
  }
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
  } else if (home) {
    const r = params.get("range");
    main.setAttribute("data-page", "overview");
    overviewPage(main, (OVERVIEW_RANGES as readonly string[]).includes(r ?? "") ? (r as OverviewRange) : "1d");
  } else {
    main.setAttribute("data-page", "devices");
    devicesPage(main);
  }
  announce(document.title.replace(/ · IoT Center$/, ""));
}

const app = document.getElementById("app") ?? document.body;
app.replaceChildren(header(), main, h("div", { id: "announcer", class: "sr-only", "aria-live": "polite" }));
window.addEventListener("hashchange", route);
resumeBackfills();
route();
