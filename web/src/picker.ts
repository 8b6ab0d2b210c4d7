// The device picker: an editable combobox with a list popup (the WAI-ARIA combobox pattern). Typing filters the list
// and loads nothing; a device is opened only when one is chosen (Enter on the active option, or a click).
import { h } from "./dom";
import { cachedDevices, loadDevices } from "./devices";
import { naturalCompare } from "./format";

const MAX_OPTIONS = 50;

export function devicePicker(current: string, choose: (id: string) => void): HTMLElement {
  const input = h("input", {
    id: "device-picker", type: "text", role: "combobox", "aria-autocomplete": "list", "aria-expanded": "false",
    "aria-controls": "device-options", autocomplete: "off", spellcheck: "false", placeholder: "type to search",
  });
  input.value = current;
  const list = h("ul", { id: "device-options", role: "listbox", "aria-label": "Devices", hidden: true });
  const more = h("p", { class: "combo-more", id: "device-options-more", hidden: true });
  let ids: string[] = [];
  let shown: string[] = [];
  let active = -1;

  const setActive = (i: number) => {
    active = i;
    list.querySelectorAll("[role=option]").forEach((o, j) => o.classList.toggle("active", j === i));
    if (i >= 0) {
      const opt = list.children[i] as HTMLElement;
      input.setAttribute("aria-activedescendant", opt.id);
      opt.scrollIntoView({ block: "nearest" });
    } else input.removeAttribute("aria-activedescendant");
  };

  const openList = () => {
    const q = input.value.trim().toLowerCase();
    const matches = ids.filter((id) => id.toLowerCase().includes(q));
    // Typing the current device's id shows every device, so the list is browsable from the start.
    const all = q === current.toLowerCase() ? ids : matches;
    shown = all.slice(0, MAX_OPTIONS);
    list.replaceChildren(...shown.map((id, i) =>
      h("li", { role: "option", id: `device-option-${i}`, "aria-selected": String(id === current), "data-id": id }, id)));
    more.hidden = all.length <= MAX_OPTIONS && all.length > 0;
    more.textContent = all.length === 0 ? "No device matches." : `${all.length - MAX_OPTIONS} more: keep typing to narrow.`;
    list.hidden = shown.length === 0;
    input.setAttribute("aria-expanded", String(shown.length > 0));
    setActive(-1);
  };

  const closeList = () => {
    list.hidden = true;
    more.hidden = true;
    input.setAttribute("aria-expanded", "false");
    setActive(-1);
  };

  const pick = (id: string) => {
    closeList();
    input.value = id;
    if (id !== current) choose(id);
  };

  input.addEventListener("input", openList);
  input.addEventListener("focus", () => input.select());
  input.addEventListener("keydown", (ev) => {
    const open = !list.hidden;
    switch (ev.key) {
      case "ArrowDown":
      case "ArrowUp":
        ev.preventDefault();
        if (!open) openList();
        if (!shown.length) return;
        setActive(ev.key === "ArrowDown" ? (active + 1) % shown.length : active <= 0 ? shown.length - 1 : active - 1);
        break;
      case "Enter": {
        ev.preventDefault();
        const exact = ids.find((id) => id === input.value.trim());
        if (open && active >= 0) pick(shown[active]);
        else if (exact) pick(exact);
        else if (open && shown.length === 1) pick(shown[0]);
        break;
      }
      case "Escape":
        if (open) {
          ev.preventDefault();
          closeList();
        } else input.value = current;
        break;
      case "Tab":
        closeList();
        break;
    }
  });
  list.addEventListener("mousedown", (ev) => ev.preventDefault()); // keep focus in the input
  list.addEventListener("click", (ev) => {
    const li = (ev.target as HTMLElement).closest("[role=option]") as HTMLElement | null;
    if (li?.dataset.id) pick(li.dataset.id);
  });
  input.addEventListener("blur", () => window.setTimeout(closeList, 100));

  const fill = (list: { deviceId: string }[]) => {
    ids = list.map((d) => d.deviceId).sort(naturalCompare);
    // The bare Dashboard link opens the first device.
    if (!current && ids.length > 0 && input.isConnected) location.replace(`#/dashboard/${encodeURIComponent(ids[0])}`);
  };
  // The list as last loaded at once; read again in the background when it is old (a device registered meanwhile).
  const cached = cachedDevices();
  const now = cached.devices;
  if (now) queueMicrotask(() => fill(now)); // once the picker is in the page
  if (!cached.devices || cached.stale) void loadDevices().then(fill, () => {});

  return h("div", { class: "combo" }, h("label", { for: "device-picker" }, "Device"), h("div", { class: "combo-box" }, input, list, more));
}
