// The Devices page: list, register, delete (optionally with data), rotate, show config, write missing data.
import { call, enc, DEVICE_ID, type Device, type DeviceConfig } from "./api";
import { h, clear, fmtTime } from "./dom";
import { ProgressView } from "./progress";

// Kept across page changes, so a running backfill's bar is still there when the user comes back.
let progressArea: HTMLElement | null = null;

export function devicesPage(root: HTMLElement, flash: (msg: string, kind?: "error" | "ok") => void): void {
  const tbody = h("tbody");
  progressArea ??= h("div", { class: "progress-area", id: "progress-area" });
  const progress = progressArea;
  const detailArea = h("div", { id: "config-area" });
  const idInput = h("input", { id: "new-device-id", placeholder: "device id, e.g. virtual_device_1", maxlength: 64, autocomplete: "off", spellcheck: "false" });
  const daysSelect = h("select", { id: "days", title: "days to fill" }, ...[1, 7, 14, 30].map((d) => h("option", { value: d, selected: d === 7 }, `${d} day${d > 1 ? "s" : ""}`)));
  const days = () => Number(daysSelect.value) || 7;

  const writeMissing = (deviceId?: string) => {
    const view = new ProgressView(deviceId ? `Write missing data: ${deviceId}` : "Write missing data: all devices");
    if (deviceId) view.el.setAttribute("data-device", deviceId);
    progress.prepend(view.el);
    void view.run({ deviceId, days: days() });
  };

  const register = async (ev: Event) => {
    ev.preventDefault();
    const id = idInput.value.trim();
    if (!DEVICE_ID.test(id)) {
      flash("A device id is 1–64 letters, digits, '_', '.' or '-', starting with a letter or digit.", "error");
      return;
    }
    try {
      const res = await call<DeviceConfig>("POST", `/api/devices/${enc(id)}`);
      flash(res.status === 201 ? `Registered ${id}.` : `${id} was already registered.`, "ok");
      idInput.value = "";
      await load();
    } catch (e) {
      flash((e as Error).message, "error");
    }
  };

  const showConfig = async (id: string) => {
    clear(detailArea);
    try {
      const cfg = (await call<DeviceConfig>("GET", `/api/env/${enc(id)}`)).data;
      detailArea.append(configCard(cfg, () => clear(detailArea), flash));
    } catch (e) {
      flash((e as Error).message, "error");
    }
  };

  const rotate = async (id: string) => {
    if (!confirm(`Rotate the token of ${id}? Its current token stops working at once.`)) return;
    try {
      const cfg = (await call<DeviceConfig>("POST", `/api/devices/${enc(id)}/rotate`)).data;
      flash(`New token issued for ${id}.`, "ok");
      clear(detailArea);
      detailArea.append(configCard(cfg, () => clear(detailArea), flash));
      await load();
    } catch (e) {
      flash((e as Error).message, "error");
    }
  };

  const remove = async (id: string) => {
    const withData = await confirmDelete(id);
    if (withData === null) return;
    try {
      await call("DELETE", `/api/devices/${enc(id)}${withData ? "?data=true" : ""}`);
      flash(`Deleted ${id}${withData ? " and its data" : ""}.`, "ok");
      clear(detailArea);
      await load();
    } catch (e) {
      flash((e as Error).message, "error");
    }
  };

  const row = (d: Device) =>
    h("tr", { "data-device": d.deviceId },
      h("td", {}, h("a", { href: `#/dashboard/${enc(d.deviceId)}`, class: "device-link" }, d.deviceId)),
      h("td", {}, fmtTime(d.createdAt)),
      h("td", {}, fmtTime(d.updatedAt)),
      h("td", { class: "actions" },
        h("button", { class: "write-missing", onclick: () => writeMissing(d.deviceId) }, "Write missing data"),
        h("button", { class: "config", onclick: () => void showConfig(d.deviceId) }, "Config"),
        h("button", { class: "rotate", onclick: () => void rotate(d.deviceId) }, "Rotate token"),
        h("a", { class: "button", href: `#/dashboard/${enc(d.deviceId)}` }, "Dashboard"),
        h("button", { class: "delete danger", onclick: () => void remove(d.deviceId) }, "Delete")));

  const load = async () => {
    try {
      const list = (await call<Device[]>("GET", "/api/devices")).data ?? [];
      clear(tbody);
      if (list.length === 0) tbody.append(h("tr", {}, h("td", { colspan: 4, class: "empty" }, "No devices registered yet.")));
      for (const d of list) tbody.append(row(d));
      root.setAttribute("data-loaded", String(list.length));
    } catch (e) {
      clear(tbody);
      tbody.append(h("tr", {}, h("td", { colspan: 4, class: "empty" }, (e as Error).message)));
      root.setAttribute("data-loaded", "error");
    }
  };

  clear(root);
  root.append(
    h("section", { class: "card" },
      h("h2", {}, "Device registrations"),
      h("form", { class: "inline", id: "register-form", onsubmit: (ev: Event) => void register(ev) },
        idInput, h("button", { type: "submit", id: "register" }, "Register"),
        h("span", { class: "spacer" }),
        h("label", {}, "Window ", daysSelect),
        h("button", { type: "button", id: "write-missing-all", onclick: () => writeMissing() }, "Write missing data (all devices)"),
        h("button", { type: "button", class: "secondary", onclick: () => void load() }, "Refresh")),
      h("table", { class: "devices" },
        h("thead", {}, h("tr", {}, h("th", {}, "Device"), h("th", {}, "Created"), h("th", {}, "Updated"), h("th", {}, ""))),
        tbody)),
    progress,
    detailArea);
  void load();
}

// configCard shows GET /api/env/{id}; the token stays masked until asked for, and Copy copies the full JSON.
function configCard(cfg: DeviceConfig, onClose: () => void, flash: (msg: string, kind?: "error" | "ok") => void): HTMLElement {
  let revealed = false;
  const pre = h("pre", { class: "config", id: "config-json" });
  const render = () => {
    const shown = { ...cfg, influx_token: revealed ? cfg.influx_token : mask(cfg.influx_token) };
    pre.textContent = JSON.stringify(shown, null, 2);
  };
  const toggle = h("button", { id: "reveal-token", onclick: () => { revealed = !revealed; toggle.textContent = revealed ? "Hide token" : "Show token"; render(); } }, "Show token");
  const copy = h("button", {
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(JSON.stringify(cfg, null, 2));
        flash(`Configuration of ${cfg.id} copied (with its token).`, "ok");
      } catch {
        flash("The browser refused clipboard access.", "error");
      }
    },
  }, "Copy config");
  render();
  return h("section", { class: "card", "data-device": cfg.id },
    h("div", { class: "card-head" }, h("h2", {}, `Configuration of ${cfg.id}`), toggle, copy, h("button", { class: "secondary", onclick: onClose }, "Close")),
    pre);
}

function mask(token: string): string {
  if (!token) return "";
  return "•".repeat(12) + (token.length > 24 ? token.slice(-4) : "");
}

// confirmDelete asks with a modal: null = cancelled, else whether to delete the measurements too.
function confirmDelete(id: string): Promise<boolean | null> {
  return new Promise((resolve) => {
    const withData = h("input", { type: "checkbox", id: "delete-data" });
    const dlg = h("dialog", { id: "delete-dialog" },
      h("form", { method: "dialog" },
        h("p", {}, `Delete device ${id}? Its token is revoked and it disappears from the registry.`),
        h("label", {}, withData, " also delete its measurements"),
        h("div", { class: "dialog-buttons" },
          h("button", { value: "cancel", class: "secondary" }, "Cancel"),
          h("button", { value: "delete", class: "danger", id: "delete-confirm" }, "Delete"))));
    dlg.addEventListener("close", () => {
      const ok = dlg.returnValue === "delete";
      dlg.remove();
      resolve(ok ? withData.checked : null);
    });
    document.body.append(dlg);
    dlg.showModal();
  });
}
