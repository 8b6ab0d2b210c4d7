// A per-row actions menu (the disclosure pattern: a button with aria-expanded showing a list of buttons). The list is
// placed in the viewport next to its button, above it when there is no room below, so it is never off-screen.
import { h, nextId } from "./dom";

export interface MenuItem {
  label: string;
  name: string;
  danger?: boolean;
  run: (opener: Element | null) => void;
}

let open: { list: HTMLElement; button: HTMLButtonElement } | null = null;

function closeOpen(focusButton: boolean): void {
  if (!open) return;
  const { list, button } = open;
  open = null;
  list.remove();
  button.setAttribute("aria-expanded", "false");
  if (focusButton) button.focus();
}

document.addEventListener("click", (ev) => {
  if (open && !open.list.contains(ev.target as Node) && !open.button.contains(ev.target as Node)) closeOpen(false);
});
window.addEventListener("resize", () => closeOpen(false));
window.addEventListener("hashchange", () => closeOpen(false));
window.addEventListener("scroll", () => closeOpen(false), { passive: true });

export function rowMenu(deviceId: string, items: MenuItem[]): HTMLElement {
  const id = nextId("menu");
  const button = h("button", { type: "button", class: "secondary menu-button", "aria-expanded": "false", "aria-controls": id, "aria-label": `More actions for ${deviceId}` }, "More ▾");
  button.addEventListener("click", () => {
    if (open?.button === button) {
      closeOpen(false);
      return;
    }
    closeOpen(false);
    const buttons = items.map((it) =>
      h("button", { type: "button", class: `menu-item ${it.name}${it.danger ? " danger" : ""}`, "data-action": it.name, "aria-label": `${it.label.replace(/…$/, "")} of ${deviceId}` }, it.label));
    const list = h("div", { class: "menu", id, role: "group", "aria-label": `Actions for ${deviceId}` }, ...buttons);
    buttons.forEach((b, i) => b.addEventListener("click", () => {
      closeOpen(false);
      items[i].run(button.isConnected ? button : null);
    }));
    list.addEventListener("keydown", (ev) => {
      const at = buttons.indexOf(document.activeElement as HTMLButtonElement);
      if (ev.key === "Escape") {
        ev.preventDefault();
        closeOpen(true);
      } else if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
        ev.preventDefault();
        buttons[(at + (ev.key === "ArrowDown" ? 1 : buttons.length - 1)) % buttons.length].focus();
      } else if (ev.key === "Tab" && ((ev.shiftKey && at === 0) || (!ev.shiftKey && at === buttons.length - 1))) {
        closeOpen(false);
      }
    });
    // Right after its button in the DOM (so Tab order follows), drawn fixed within the viewport.
    button.after(list);
    const r = button.getBoundingClientRect();
    const lw = list.offsetWidth;
    const lh = list.offsetHeight;
    const left = Math.max(8, Math.min(r.right - lw, window.innerWidth - lw - 8));
    const below = r.bottom + 4 + lh <= window.innerHeight - 8;
    const top = below ? r.bottom + 4 : Math.max(8, r.top - 4 - lh);
    list.style.left = `${left}px`;
    list.style.top = `${top}px`;
    button.setAttribute("aria-expanded", "true");
    open = { list, button };
    buttons[0].focus();
  });
  return button;
}
