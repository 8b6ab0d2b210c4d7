// The Devices page, sized for a fleet: the server searches (an id prefix), filters by status, sorts and pages, so the
// page reads 50 devices at a time whatever the fleet's size; the counts come from GET /api/devices/counts. Each row
// shows its primary action (Dashboard); the others are in a per-row menu. Results open in the side panel.
import { call, enc, ApiError, DEVICE_ID, devicePage, deviceCounts, pagePath, type Counts, type Device, type DeviceConfig, type DeviceSort, type Status } from "./api";
import { h, announce } from "./dom";
import { fmtTime, fmtAgo, fmtNumber } from "./format";
import { openPanel, confirmAction } from "./panel";
import { startBackfill, running, backfills, onBackfillsChanged, progressView, targetName, type Backfill, type Target } from "./progress";
import { toast } from "./toast";
import { rowMenu } from "./menu";

const PAGE_SIZE = 50;
type Filter = "all" | Status;
type Sort = "id" | "seen-old" | "seen-new";
const API_SORT: Record<Sort, DeviceSort> = { id: "id", "seen-old": "lastSeen", "seen-new": "-lastSeen" };

// The page of the list and the view survive page changes: a failed refresh keeps the last page, and coming back
// keeps the place. pages[i] is the request of page i (the API's Link: rel="next" chain as far as it was followed).
let shown: Device[] | null = null;
let counts: Counts | null = null;
let next: string | null = null;
let pages: string[] = [];
let listError = "";
let loadedAt = 0;
// shownFor is the view the shown rows answer (the search, filter, sort and page they were read for).
let shownFor = { q: "", filter: "all" as Filter, sort: "id" as Sort, page: 0 };
// keyRefused: the API answered 401/403 to the last read; what needs the key is disabled until a key is accepted.
let keyRefused = false;
// The list reads itself again this often while the page is shown (and the tab visible).
const AUTO_REFRESH_MS = 30_000;
const view = { q: "", filter: "all" as Filter, sort: "id" as Sort, page: 0, days: 7 };

const STATUS_TEXT: Record<Status, string> = { online: "Online", late: "Late", silent: "Silent" };
const STATUS_ICON: Record<Status, string> = { online: "●", late: "◐", silent: "○" };

function statusOf(d: Device): Status | undefined {
  return d.status === "online" || d.status === "late" || d.status === "silent" ? d.status : undefined;
}

// searchable says whether the search text can start a device id (else nothing matches, and nothing is asked).
function searchable(q: string): boolean {
  return q === "" || DEVICE_ID.test(q);
}

function firstPage(): string {
  const q = view.q.trim();
  return pagePath({ limit: PAGE_SIZE, sort: API_SORT[view.sort], status: view.filter === "all" ? undefined : view.filter, q: q || undefined });
}

let loads = 0;

// loadPage reads page view.page (and the counts). Only the latest load decides: an older one finishing later changes
// nothing (false). A page past the followed chain starts over at the first.
async function loadPage(): Promise<boolean> {
  const seq = ++loads;
  if (pages.length === 0 || pages[0] !== firstPage()) {
    pages = [firstPage()];
    view.page = 0;
  }
  view.page = Math.min(view.page, pages.length - 1);
  const q = view.q.trim();
  const asked = { q, filter: view.filter, sort: view.sort, page: view.page };
  try {
    const [page, c] = await Promise.all([
      searchable(q) ? devicePage(pages[view.page]) : Promise.resolve({ devices: [], next: null }),
      deviceCounts(),
    ]);
    if (seq !== loads) return false;
    shown = page.devices;
    shownFor = asked;
    next = page.next;
    pages.length = view.page + 1;
    if (next) pages.push(next);
    counts = c;
    listError = "";
    loadedAt = Date.now();
    keyRefused = false;
  } catch (e) {
    if (seq !== loads) return false;
    listError = (e as Error).message;
    keyRefused = e instanceof ApiError && (e.status === 401 || e.status === 403);
  }
  return true;
}

export function devicesPage(root: HTMLElement): void {
  document.title = "Devices · IoT Center";
  const tbody = h("tbody");
  const count = h("p", { class: "count", id: "device-count", "aria-live": "polite" });
  const asOf = h("p", { class: "count as-of", id: "list-as-of" });
  const banner = h("div", { class: "banner", id: "list-banner", role: "alert", hidden: true });
  const pager = h("nav", { class: "pager", "aria-label": "Device list pages" });
  const jobs = h("div", { class: "jobs", id: "jobs" });
  const filters = h("div", { class: "filters", role: "group", "aria-label": "Show devices by status" });

  const idInput = h("input", { id: "new-device-id", name: "deviceId", maxlength: 64, autocomplete: "off", spellcheck: "false", "aria-describedby": "new-device-hint" });
  const search = h("input", { id: "device-search", type: "search", autocomplete: "off", spellcheck: "false", value: view.q, "aria-describedby": "device-search-hint" });
  const sort = h("select", { id: "device-sort" },
    h("option", { value: "id", selected: view.sort === "id" }, "Id"),
    h("option", { value: "seen-old", selected: view.sort === "seen-old" }, "Last seen, oldest first"),
    h("option", { value: "seen-new", selected: view.sort === "seen-new" }, "Last seen, newest first"));
  const daysSelect = h("select", { id: "days" }, ...[1, 7, 14, 30].map((d) => h("option", { value: d, selected: d === view.days }, `last ${d} day${d > 1 ? "s" : ""}`)));
  const allButton = h("button", { type: "button", id: "write-missing-all" }, "Write missing data (all devices)…");
  const registerButton = h("button", { type: "submit", id: "register" }, "Register");
  const refresh = h("button", { type: "button", class: "secondary", id: "refresh" }, "Refresh");

  // A list read that arrives while the operator is inside the rows (focus on a row's control, its menu open) does
  // not redraw them under the operator: the rows are redrawn when the focus leaves them.
  let rowsPending = false;
  let rowsAsOf = 0; // when the page the rows show was read
  tbody.addEventListener("focusout", (ev) => {
    if (rowsPending && !tbody.contains((ev as FocusEvent).relatedTarget as Node | null)) {
      rowsPending = false;
      window.setTimeout(render, 0);
    }
  });
  const render = () => {
    const rows = shown ?? [];
    const first = view.page * PAGE_SIZE;
    const inside = tbody.contains(document.activeElement) && document.activeElement !== document.body;
    if (inside && tbody.childElementCount > 0) rowsPending = true;
    else {
      tbody.replaceChildren(...rows.map(row));
      rowsAsOf = loadedAt;
      // what the rows answer, for scripts (the browser test) that must wait for a given view
      Object.assign(tbody.dataset, { q: shownFor.q, filter: shownFor.filter, sort: shownFor.sort, page: String(shownFor.page) });
    }
    const registered = counts?.registered ?? 0;
    if (shown !== null && rows.length === 0) {
      tbody.append(h("tr", { class: "empty-row" }, h("td", { colspan: 5, class: "empty" },
        registered === 0 ? "No devices registered yet. Register one above." : "No device matches this search or filter.")));
    }
    const n = (f: Filter) => (counts ? (f === "all" ? counts.registered : counts[f]) : 0);
    filters.replaceChildren(...(["all", "online", "late", "silent"] as Filter[]).map((f) =>
      h("button", {
        type: "button", class: `chip ${f}`, "aria-pressed": String(view.filter === f), "data-filter": f, disabled: f !== "all" && !counts?.asOf,
        onclick: () => { view.filter = f; view.page = 0; void reload(); },
      }, f === "all" ? `All ${fmtNumber(n(f), 0)}` : `${STATUS_ICON[f]} ${STATUS_TEXT[f]} ${counts?.asOf ? fmtNumber(n(f), 0) : "—"}`)));
    // the total behind the pages: known for a status (the counts), not for a search (the server pages it)
    const q = view.q.trim();
    const total = q ? null : n(view.filter);
    const pageCount = total === null ? null : Math.max(1, Math.ceil(total / PAGE_SIZE));
    count.textContent = shown === null ? (listError ? "The device list could not be loaded." : "Loading devices…")
      : `${registered.toLocaleString("en-US")} device${registered === 1 ? "" : "s"}` +
        (q ? `; ${rows.length ? "matches" : "no match"} for “${q}”` : view.filter !== "all" ? `, ${n(view.filter).toLocaleString("en-US")} match` : "") +
        (rows.length ? `; showing ${first + 1}–${first + rows.length}` : "");
    root.setAttribute("data-loaded", shown === null ? "" : String(registered));
    const go = (p: number) => async () => {
      view.page = p;
      await reload();
      (tbody.querySelector("a, button") as HTMLElement | null)?.focus();
    };
    pager.replaceChildren(
      h("button", { type: "button", class: "secondary", id: "page-prev", disabled: view.page === 0, onclick: go(view.page - 1) }, "‹ Previous"),
      h("span", { class: "page-of", "aria-current": "page" }, pageCount === null ? `Page ${view.page + 1}` : `Page ${view.page + 1} of ${pageCount}`),
      h("button", { type: "button", class: "secondary", id: "page-next", disabled: !next, onclick: go(view.page + 1) }, "Next ›"));
    banner.hidden = !listError;
    banner.textContent = !listError ? ""
      : keyRefused ? "The API refused the operator key (it was changed or revoked): registering, writing missing data and the row actions are disabled until a valid key is entered above." + (shown === null ? "" : " Showing the list as last loaded.")
      : shown === null ? `Loading the devices failed (${listError}). Try Refresh.` : `Refresh failed (${listError}). Showing the list as last loaded.`;
    if (rowsAsOf) {
      const iso = new Date(rowsAsOf).toISOString();
      asOf.setAttribute("data-as-of", iso);
      asOf.textContent = `as of ${fmtTime(iso)}; refreshes every ${AUTO_REFRESH_MS / 1000} s` +
        (counts?.asOf ? `; statuses from the fleet check at ${fmtTime(counts.asOf)}` : "; statuses after the first fleet check");
    }
    for (const b of [registerButton, allButton]) b.disabled = keyRefused;
    root.toggleAttribute("data-key-refused", keyRefused);
    renderJobs();
  };

  const renderJobs = () => {
    const bs = backfills();
    jobs.replaceChildren(...bs.map((b) => {
      const s = b.snap;
      const pct = s.percent === null ? (s.state === "planning" ? "Planning…" : "Running") : `${s.percent.toFixed(1)} %`;
      return h("div", { class: `job ${s.state}`, "data-key": b.saved.key },
        h("span", {}, `Write missing data: ${targetName(b.target)}. `, h("strong", {}, `${s.state === "done" ? "Done ✓" : s.state === "failed" ? "Failed ✕" : s.state === "cancelled" ? "Cancelled ■" : pct}`)),
        h("button", { type: "button", class: "secondary", "aria-label": `Show backfill of ${targetName(b.target)}`, onclick: (ev: Event) => showBackfill(b, ev.currentTarget as Element) }, "Show"));
    }));
    const all = running({ days: view.days });
    allButton.textContent = all ? "Backfill running: show progress" : "Write missing data (all devices)…";
  };

  // Only the latest read draws: rows, chips and counts change together, for the view that was asked for.
  const reload = async () => {
    refresh.setAttribute("aria-busy", "true");
    if (!(await loadPage())) return; // a newer read is under way; listError says why this one failed
    refresh.removeAttribute("aria-busy");
    root.setAttribute("data-refreshed", String(Date.now()));
    render();
  };

  const register = async (ev: Event) => {
    ev.preventDefault();
    const id = idInput.value.trim();
    const opener = ev.target instanceof HTMLFormElement ? ev.target.querySelector("button") : null;
    if (!DEVICE_ID.test(id)) {
      idInput.setAttribute("aria-invalid", "true");
      toast("A device id is 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit.", "error");
      idInput.focus();
      return;
    }
    idInput.removeAttribute("aria-invalid");
    try {
      const res = await call<DeviceConfig>("POST", `/api/devices/${enc(id)}`);
      idInput.value = "";
      configPanel(res.data, opener, res.status === 201 ? `Registered ${id}` : `${id} was already registered`);
      await reload();
    } catch (e) {
      toast(`Registering ${id} failed: ${(e as Error).message}`, "error");
    }
  };

  const row = (d: Device): HTMLElement => {
    const id = d.deviceId;
    const st = statusOf(d);
    const tr = h("tr", { "data-device": id, "data-status": st ?? "" },
      h("th", { scope: "row", "data-label": "Device" }, h("span", { class: "device-id" }, id)),
      h("td", { "data-label": "Status" }, st ? h("span", { class: `status-badge ${st}` }, h("span", { "aria-hidden": "true" }, STATUS_ICON[st]), ` ${STATUS_TEXT[st]}`) : h("span", { class: "muted" }, "unknown")),
      h("td", { "data-label": "Last seen" }, d.lastSeen
        ? h("time", { datetime: d.lastSeen, class: "seen" }, fmtAgo(d.lastSeen), h("small", { class: "exact" }, fmtTime(d.lastSeen)))
        : d.lastSeen === null ? "never" : "—"),
      h("td", { "data-label": "Registered" }, fmtTime(d.createdAt, false)),
      h("td", { class: "actions", "data-label": "Actions" },
        h("a", { class: "button primary-action", href: `#/dashboard/${enc(id)}`, "aria-label": `Dashboard of ${id}` }, "Dashboard"),
        keyRefused ? h("button", { type: "button", class: "secondary menu-button", disabled: true, title: "The operator key was refused" }, "More ▾") : rowMenu(id, [
          { label: "Configuration", name: "config", run: (o) => void showConfig(id, o) },
          { label: "Write missing data…", name: "write-missing", run: (o) => void backfillDevice(d, o) },
          { label: "Rotate token…", name: "rotate", danger: true, run: (o) => void rotate(id, o) },
          { label: "Delete…", name: "delete", danger: true, run: () => void remove(id, reload) },
        ])));
    return tr;
  };

  // The server searches: a read after the typing pauses, not one per key.
  let typing = 0;
  search.addEventListener("input", () => {
    view.q = search.value;
    view.page = 0;
    window.clearTimeout(typing);
    typing = window.setTimeout(() => void reload(), 250);
  });
  sort.addEventListener("change", () => {
    view.sort = sort.value as Sort;
    view.page = 0;
    void reload();
  });
  daysSelect.addEventListener("change", () => {
    view.days = Number(daysSelect.value) || 7;
    renderJobs();
  });
  allButton.addEventListener("click", () => void backfillAll(counts?.registered ?? 0, view.days, allButton));
  refresh.addEventListener("click", () => void reload());

  root.replaceChildren(
    h("h1", { class: "page-title" }, "Devices"),
    h("section", { class: "card", "aria-labelledby": "register-title" },
      h("h2", { id: "register-title" }, "Register a device"),
      h("form", { class: "inline", id: "register-form", onsubmit: (ev: Event) => void register(ev) },
        h("label", { for: "new-device-id" }, "Device id"), idInput, registerButton,
        h("span", { id: "new-device-hint", class: "hint" }, "1–64 letters, digits, _ . - (e.g. virtual_device_1)"))),
    h("section", { class: "card", "aria-labelledby": "backfill-title" },
      h("h2", { id: "backfill-title" }, "Write missing data"),
      h("div", { class: "inline" }, h("label", { for: "days" }, "Window"), daysSelect, allButton),
      jobs),
    h("section", { class: "card", "aria-labelledby": "list-title" },
      h("div", { class: "card-head" }, h("h2", { id: "list-title", tabindex: -1 }, "Registered devices"), count, asOf),
      h("div", { class: "toolbar" },
        h("div", { class: "field" }, h("label", { for: "device-search" }, "Search"), search, h("span", { id: "device-search-hint", class: "hint" }, "ids starting with")),
        h("div", { class: "field" }, h("label", { for: "device-sort" }, "Sort by"), sort),
        refresh),
      filters,
      banner,
      h("table", { class: "devices", "aria-labelledby": "list-title", "aria-describedby": "device-count" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Device"), h("th", { scope: "col" }, "Status"), h("th", { scope: "col" }, "Last seen"), h("th", { scope: "col" }, "Registered"), h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Actions")))),
        tbody),
      pager));
  // A backfill that finishes changes last-seen times: the list is read again then.
  const done = new Set(backfills().filter((b) => b.finished).map((b) => b.saved.key + b.saved.started));
  const unsub = onBackfillsChanged(() => {
    if (!jobs.isConnected) return unsub();
    renderJobs();
    const fresh = backfills().filter((b) => b.finished && !done.has(b.saved.key + b.saved.started));
    fresh.forEach((b) => done.add(b.saved.key + b.saved.started));
    if (fresh.length) void reload();
  });
  render();
  void reload();
  // The list reads itself again while it is shown. A tick is skipped while the tab is hidden, a read is running, or
  // the operator is inside the list or a menu or dialog (redrawing the rows would take the focus or the menu away).
  const timer = window.setInterval(() => {
    if (!tbody.isConnected) return window.clearInterval(timer);
    const busy = refresh.getAttribute("aria-busy") === "true" || document.querySelector(".menu, dialog[open]") !== null ||
      tbody.contains(document.activeElement);
    if (document.visibilityState === "visible" && !busy) void reload();
  }, AUTO_REFRESH_MS);
}

// backfill starts one unless the same devices and window already have one running, which is shown instead.
function backfill(t: Target, opener: Element | null): void {
  const existing = running(t);
  showBackfill(existing ?? startBackfill(t), opener, !existing);
}

const DAY_CHOICES = [1, 7, 14, 30];

// windowText is the window a backfill of `days` days started now covers, in UTC.
function windowText(days: number): string {
  const to = new Date(Math.floor(Date.now() / 60_000) * 60_000);
  const from = new Date(to.getTime() - days * 86_400_000);
  return `${fmtTime(from.toISOString(), false)} to ${fmtTime(to.toISOString(), false)}`;
}

const GENERATED_NOTE = "The values are generated (the seed's virtual sensors), not measured: they are tagged as generated, drawn dashed on the dashboard, and never change a device's status or last seen.";

// backfillAll asks first, as rotate and delete do: how many devices, at most how many points, which window.
async function backfillAll(n: number, days: number, opener: Element): Promise<void> {
  const existing = running({ days });
  if (existing) return showBackfill(existing, opener);
  const ok = await confirmAction({
    title: `Write missing data for all ${fmtNumber(n, 0)} devices?`,
    body: [
      h("p", { id: "backfill-plan" }, `Window: the last ${days} day${days > 1 ? "s" : ""}, ${windowText(days)}. Every minute of it without a point is filled, for every registered device: at most ${fmtNumber(n * days * 1440, 0)} points (${fmtNumber(n, 0)} devices × ${fmtNumber(days * 1440, 0)} minutes).`),
      "Devices that have written data of their own get their missing minutes filled around it.",
      GENERATED_NOTE,
      "The job can be cancelled while it runs; what was written by then stays.",
    ].filter(Boolean),
    confirm: "Write missing data",
  });
  if (ok) backfill({ days }, opener);
}

// backfillDevice asks with the row's own window (not the one chosen for all devices), and says what happens to a
// device that has written data of its own.
async function backfillDevice(d: Device, opener: Element | null): Promise<void> {
  const id = d.deviceId;
  const already = DAY_CHOICES.map((n) => running({ deviceId: id, days: n })).find(Boolean);
  if (already) return showBackfill(already, opener);
  const days = h("select", { id: "row-days" }, ...DAY_CHOICES.map((n) => h("option", { value: n, selected: n === 7 }, `last ${n} day${n > 1 ? "s" : ""}`)));
  const plan = h("p", { id: "backfill-plan" });
  const say = () => {
    const n = Number(days.value) || 7;
    plan.textContent = `Window: ${windowText(n)}. Every minute of it without a point of ${id} is filled: at most ${fmtNumber(n * 1440, 0)} points.`;
  };
  days.addEventListener("change", say);
  say();
  const ok = await confirmAction({
    title: `Write missing data for ${id}?`,
    body: [
      plan,
      d.lastSeen ? `${id} has written data of its own (last seen ${fmtTime(d.lastSeen)}): its minutes with a point are left as they are, the others get generated values.` : "",
      GENERATED_NOTE,
    ].filter(Boolean),
    extra: h("label", { class: "check", for: "row-days" }, "Window ", days),
    confirm: "Write missing data",
  });
  if (ok) backfill({ deviceId: id, days: Number(days.value) || 7 }, opener);
}

function showBackfill(b: Backfill, opener: Element | null, fresh = false): void {
  const p = openPanel(`Write missing data: ${targetName(b.target)}`, opener, "backfill");
  if (!fresh) {
    const hint = h("p", { class: "hint" });
    const say = () => (hint.textContent = b.finished ? "This backfill has finished." : "This backfill is already running; here is its progress (it is not started twice).");
    say();
    const stop = b.subscribe(() => (hint.isConnected ? say() : stop()));
    p.body.append(hint);
  }
  p.body.append(progressView(b));
  announce(`Backfill of ${targetName(b.target)}: ${b.snap.state}`);
}

async function showConfig(id: string, opener: Element | null): Promise<void> {
  try {
    const cfg = (await call<DeviceConfig>("GET", `/api/env/${enc(id)}?register=false`)).data;
    configPanel(cfg, opener, `Configuration of ${id}`);
  } catch (e) {
    toast(`Configuration of ${id}: ${(e as Error).message}`, "error");
  }
}

// configPanel shows a device's configuration. A token in the answer (registration, rotation) is shown once, masked
// until asked for; without one, the panel says so and offers rotation.
function configPanel(cfg: DeviceConfig, opener: Element | null, title: string): void {
  const p = openPanel(title, opener, "config");
  const token = cfg.influx_token ?? "";
  let revealed = false;
  const pre = h("pre", { class: "config", id: "config-json", tabindex: 0, "aria-label": `Configuration of ${cfg.id} as JSON` });
  const render = () => (pre.textContent = JSON.stringify({ ...cfg, ...(token ? { influx_token: revealed ? token : mask(token) } : {}) }, null, 2));
  const buttons = h("div", { class: "inline" });
  if (token) {
    const toggle = h("button", { type: "button", id: "reveal-token", "aria-pressed": "false" }, "Show token");
    toggle.addEventListener("click", () => {
      revealed = !revealed;
      toggle.setAttribute("aria-pressed", String(revealed));
      render();
    });
    const copy = h("button", { type: "button", class: "secondary", id: "copy-config" }, "Copy configuration");
    copy.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(JSON.stringify(cfg, null, 2));
        note.textContent = `Configuration of ${cfg.id} copied, with its token.`;
      } catch {
        note.textContent = "The browser refused clipboard access; select the text instead.";
      }
    });
    buttons.append(toggle, copy);
  }
  const rot = h("button", { type: "button", class: "danger", id: "panel-rotate" }, `Rotate token of ${cfg.id}…`);
  rot.addEventListener("click", () => void rotate(cfg.id, rot));
  buttons.append(rot);
  const note = h("p", { class: "hint", role: "status" });
  p.body.append(
    h("p", { class: "once", id: "token-note" }, tokenNote(token)),
    buttons, note, pre);
  render();
  announce(title);
}

// tokenNote says what the page can and cannot show again. A gateway credential (iotc_…) is answered once, to its
// creator: the registry keeps only its hash. A direct-mode InfluxDB token stays readable by the operator.
function tokenNote(token: string): string {
  if (!token) return "The device credential is not shown again after registration or rotation. If the device lost it, rotate to issue a new one.";
  if (token.startsWith("iotc_")) return "This device credential is shown once: copy it now. Only its hash is kept; if it is lost, rotate to issue a new one.";
  return "This is the device's InfluxDB token (direct writes); the configuration view shows it again. Rotate it if it may have leaked.";
}

function mask(token: string): string {
  return "•".repeat(12) + (token.length > 24 ? token.slice(-4) : "");
}

async function rotate(id: string, opener: Element | null): Promise<void> {
  const ok = await confirmAction({
    title: `Rotate the token of ${id}?`,
    body: [`${id} gets a new token and its current token stops working within 60 s (the write gateway's credential cache; a direct-mode InfluxDB token at once). The device writes nothing until it has the new token.`],
    confirm: "Rotate token",
    danger: true,
  });
  if (!ok) return;
  try {
    const cfg = (await call<DeviceConfig>("POST", `/api/devices/${enc(id)}/rotate`)).data;
    configPanel(cfg, opener, `New token for ${id}`);
  } catch (e) {
    toast(`Rotating ${id} failed: ${(e as Error).message}`, "error");
  }
}

async function remove(id: string, reload: () => Promise<void>): Promise<void> {
  const withData = h("input", { type: "checkbox", id: "delete-data" });
  const what = h("p", { id: "delete-effect" });
  const say = () => (what.textContent = withData.checked
    ? `Its measurements (raw and hourly) are deleted too, now and once more a little later (what its old token wrote meanwhile): if ${id} is registered again after that, it starts with no data.`
    : `Its measurements are kept: if ${id} is registered again, it gets a new token and its dashboard shows the old data again.`);
  withData.addEventListener("change", say);
  say();
  const ok = await confirmAction({
    title: `Delete ${id}?`,
    body: [`Its token is revoked and stops working within 60 s (the write gateway's credential cache; a direct-mode InfluxDB token at once), and ${id} leaves the registry.`, what],
    extra: h("label", { class: "check" }, withData, " Also delete its measurements"),
    confirm: "Delete device",
    danger: true,
  });
  if (!ok) return;
  const data = withData.checked;
  try {
    await call("DELETE", `/api/devices/${enc(id)}${data ? "?data=true" : ""}`);
    toast(`Deleted ${id}${data ? " and its measurements" : "; its measurements are kept"}.`, "ok");
    await reload();
    document.getElementById("list-title")?.focus();
  } catch (e) {
    toast(`Deleting ${id} failed: ${(e as Error).message}`, "error");
  }
}
