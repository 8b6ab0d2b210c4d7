// Where action results appear: a side panel (a modal <dialog> fixed to the viewport's right edge; the whole screen on
// a phone) that takes focus when it opens and gives it back to the control that opened it. And the one confirmation
// dialog, for rotate and delete.
import { h, nextId } from "./dom";

export interface Panel {
  el: HTMLDialogElement;
  body: HTMLElement;
  heading: HTMLElement;
  close(): void;
}

let current: Panel | null = null;

export function openPanel(title: string, opener: Element | null, kind = ""): Panel {
  current?.close();
  const hid = nextId("panel-title");
  const heading = h("h2", { id: hid, tabindex: -1 }, title);
  const body = h("div", { class: "panel-body" });
  const closeBtn = h("button", { type: "button", class: "secondary panel-close", "aria-label": `Close: ${title}` }, "Close");
  const el = h("dialog", { class: "panel", "aria-labelledby": hid, "data-kind": kind },
    h("div", { class: "panel-head" }, heading, closeBtn), body);
  const panel: Panel = {
    el,
    body,
    heading,
    close: () => {
      if (el.open) el.close();
    },
  };
  closeBtn.addEventListener("click", () => panel.close());
  el.addEventListener("close", () => {
    el.remove();
    if (current === panel) current = null;
    if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
  });
  document.body.append(el);
  el.showModal();
  heading.focus(); // screen readers read the dialog's name, then the heading
  current = panel;
  return panel;
}

export function currentPanel(): Panel | null {
  return current;
}

export interface ConfirmOptions {
  title: string;
  body: (string | Node)[];
  confirm: string;
  danger?: boolean;
  extra?: HTMLElement;
}

// confirmAction resolves true when the operator confirms; Cancel, Escape or a click outside the buttons resolve false.
export function confirmAction(o: ConfirmOptions): Promise<boolean> {
  return new Promise((resolve) => {
    const hid = nextId("confirm-title");
    const did = nextId("confirm-desc");
    const cancel = h("button", { type: "submit", value: "cancel", class: "secondary", id: "confirm-cancel" }, "Cancel");
    const ok = h("button", { type: "submit", value: "ok", class: o.danger ? "danger-solid" : "", id: "confirm-ok" }, o.confirm);
    const dlg = h("dialog", { class: "confirm", role: "alertdialog", "aria-labelledby": hid, "aria-describedby": did },
      h("form", { method: "dialog" },
        h("h2", { id: hid }, o.title),
        h("div", { id: did, class: "confirm-body" }, ...o.body.map((b) => (typeof b === "string" ? h("p", {}, b) : b))),
        o.extra ?? null,
        h("div", { class: "dialog-buttons" }, cancel, ok)));
    const back = document.activeElement;
    dlg.addEventListener("close", () => {
      const yes = dlg.returnValue === "ok";
      dlg.remove();
      if (back instanceof HTMLElement && back.isConnected) back.focus();
      resolve(yes);
    });
    document.body.append(dlg);
    dlg.showModal();
    cancel.focus(); // the safe choice is the default one
  });
}
