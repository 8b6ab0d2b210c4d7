// The device picker: an editable combobox with a list popup (the WAI-ARIA combobox pattern). Typing asks the server
// for the ids starting with the text (a page of 50, once typing pauses) and loads no device's data; a device is
// opened only when one is chosen (Enter on the active option, or a click).
import { h } from "./dom";
import { DEVICE_ID, devicePage, pagePath } from "./api";

const MAX_OPTIONS = 50;
const TYPING_MS = 250;

export function devicePicker(current: string, choose: (id: string) => void): HTMLElement {
  const input = h("input", {
    id: "device-picker", type: "text", role: "combobox", "aria-autocomplete": "list", "aria-expanded": "false",
    "aria-controls": "device-options", autocomplete: "off", spellcheck: "false", placeholder: "type the start of an id",
  });
  input.value = current;
  const list = h("ul", { id: "device-options", role: "listbox", "aria-label": "Devices", hidden: true });
  const more = h("p", { class: "combo-more", id: "device-options-more", hidden: true });
  let shown: string[] = [];
  let active = -1;
  let reads = 0;
  let typing = 0; // the pending read's timer (0: none)

  const setActive = (i: number) => {
    active = i;
    list.querySelectorAll("[role=option]").forEach((o, j) => o.classList.toggle("active", j === i));
    if (i >= 0) {
      const opt = list.children[i] as HTMLElement;
      input.setAttribute("aria-activedescendant", opt.id);
      opt.scrollIntoView({ block: "nearest" });
    } else input.removeAttribute("aria-activedescendant");
  };

  const showOptions = (ids: string[], hasMore: boolean, failed = false) => {
    shown = ids;
    list.replaceChildren(...shown.map((id, i) =>
      h("li", { role: "option", id: `device-option-${i}`, "aria-selected": String(id === current), "data-id": id }, id)));
    more.hidden = shown.length > 0 && !hasMore;
    more.textContent = failed ? "The devices could not be read." : shown.length === 0 ? "No device matches." : "More devices match: keep typing to narrow.";
    list.hidden = shown.length === 0;
    input.setAttribute("aria-expanded", String(shown.length > 0));
    setActive(-1);
  };

  // openList reads the ids starting with the text (every id for the current device's own, so the list is browsable
  // from the start). Only the latest read shows, and only while the picker has the focus.
  const openList = async () => {
    window.clearTimeout(typing);
    typing = 0;
    const seq = ++reads;
    const q = input.value.trim();
    const prefix = q === current ? "" : q;
    let ids: string[] = [];
    let hasMore = false;
    let failed = false;
    if (prefix === "" || DEVICE_ID.test(prefix)) {
      try {
        const page = await devicePage(pagePath({ limit: MAX_OPTIONS, sort: "id", q: prefix || undefined }));
        ids = page.devices.map((d) => d.deviceId);
        hasMore = page.next !== null;
      } catch {
        failed = true;
      }
    }
    if (seq === reads && document.activeElement === input) showOptions(ids, hasMore, failed);
  };

  const closeList = () => {
    window.clearTimeout(typing);
    typing = 0;
    reads++; // a read under way shows nothing
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

  input.addEventListener("input", () => {
    window.clearTimeout(typing);
    typing = window.setTimeout(() => void openList(), TYPING_MS);
  });
  // Enter chooses the active option, else the id typed when it is registered (read first if the typing's read has
  // not come back), else the only option.
  const enter = async () => {
    if (!list.hidden && active >= 0) return pick(shown[active]);
    const typed = input.value.trim();
    if (typing || !shown.includes(typed)) await openList();
    if (shown.includes(typed)) pick(typed);
    else if (!list.hidden && shown.length === 1) pick(shown[0]);
  };
  input.addEventListener("focus", () => input.select());
  input.addEventListener("keydown", (ev) => {
    const open = !list.hidden;
    switch (ev.key) {
      case "ArrowDown":
      case "ArrowUp":
        ev.preventDefault();
        if (!open) return void openList(); // opens the list; the next press moves in it
        if (!shown.length) return;
        setActive(ev.key === "ArrowDown" ? (active + 1) % shown.length : active <= 0 ? shown.length - 1 : active - 1);
        break;
      case "Enter":
        ev.preventDefault();
        void enter();
        break;
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

  // The bare Dashboard link opens the first device (by id).
  if (!current) {
    void devicePage(pagePath({ limit: 1, sort: "id" })).then((page) => {
      const first = page.devices[0]?.deviceId;
      if (first && input.isConnected) location.replace(`#/dashboard/${encodeURIComponent(first)}`);
    }, () => {});
  }

  return h("div", { class: "combo" }, h("label", { for: "device-picker" }, "Device"), h("div", { class: "combo-box" }, input, list, more));
}
