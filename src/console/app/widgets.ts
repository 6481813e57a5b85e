/** Building blocks the pages share: cards, stats, tables, form fields and form actions. */
import { type Child, h } from "./dom.ts";
import { errText } from "./format.ts";
import { refreshNow } from "./live.ts";
import { OverflowPolicies } from "../../protocol/types.ts";

/** A column of {@link table}: its header, its cell, and whether it is numeric (right-aligned). */
export interface Column<T> {
  label: string;
  get: (row: T) => Child;
  num?: boolean;
  /** A class for the cells (when not numeric). */
  cls?: string;
  /** A tooltip for the cells. */
  title?: (row: T) => string;
}

/** A row of {@link table}: its data, an optional click action and a `data-id` for tests and links. */
export interface Row<T> {
  data: T;
  onclick: (() => void) | null;
  id: string | null;
}

/** A table of `rows`, or the `empty` note when there are none. */
export function table<T>(
  columns: readonly Column<T>[],
  rows: readonly Row<T>[],
  empty?: string,
): HTMLElement {
  if (!rows.length) return h("p", { class: "empty" }, empty || "Nothing here yet.");
  return h(
    "table",
    null,
    h(
      "thead",
      null,
      h(
        "tr",
        null,
        columns.map((c) => h("th", { class: c.num ? "num" : null }, c.label)),
      ),
    ),
    h(
      "tbody",
      null,
      rows.map((r) => {
        const tr = h(
          "tr",
          { class: r.onclick ? "clickable" : null, onclick: r.onclick },
          columns.map((c) =>
            h(
              "td",
              { class: c.num ? "num" : c.cls || null, title: c.title ? c.title(r.data) : null },
              c.get(r.data),
            ),
          ),
        );
        if (r.id) tr.setAttribute("data-id", r.id);
        return tr;
      }),
    ),
  );
}

/** Rows for {@link table} from items, each optionally clickable and with a `data-id`. */
export function rowsOf<T>(
  items: readonly T[],
  onclick?: ((item: T) => void) | null,
  id?: (item: T) => string,
): Row<T>[] {
  return items.map((d) => ({
    data: d,
    onclick: onclick ? () => onclick(d) : null,
    id: id ? id(d) : null,
  }));
}

/** A labelled form control. */
export function field(label: string, input: Child): HTMLLabelElement {
  return h("label", null, label, input);
}

/** A card with an optional heading. */
export function card(title: string | null, ...children: Child[]): HTMLDivElement {
  return h("div", { class: "card" }, title ? h("h2", null, title) : null, children);
}

/** A headline figure; its value (`id`) is filled by the page's refresh. */
export function stat(label: string, id: string): HTMLDivElement {
  return h(
    "div",
    { class: "stat" },
    h("div", { class: "label" }, label),
    h("div", { class: "value", id }, "—"),
  );
}

/** Shows an action's outcome in its result line. */
export function show(el: HTMLElement, ok: boolean, text: string): void {
  el.className = `result ${ok ? "ok" : "error"}`;
  el.textContent = text;
}

/** A link to a page of the console (a hash route). */
export function link(href: string, text: string): HTMLAnchorElement {
  return h("a", { href }, text);
}

/** Links separated by commas. */
export function links(items: readonly string[], href: (item: string) => string): Child[] {
  return items.map((item, i) => [i ? ", " : "", link(href(item), item)]);
}

/**
 * Runs `fn` when `form` is submitted: disables its submit button meanwhile,
 * shows the text `fn` resolves with (or nothing for undefined) or the API
 * error in `out`, then refreshes the page.
 */
export function act(
  form: HTMLFormElement,
  out: HTMLElement,
  fn: () => string | undefined | Promise<string | undefined>,
): HTMLFormElement {
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const btn = form.querySelector<HTMLButtonElement>("button[type=submit]");
    if (btn) btn.disabled = true;
    out.className = "result muted";
    out.textContent = "…";
    void Promise.resolve()
      .then(fn)
      .then(
        (text) => {
          if (text !== undefined) {
            show(out, true, text);
          } else {
            out.textContent = "";
            out.className = "result";
          }
        },
        (e: unknown) => show(out, false, errText(e)),
      )
      .then(() => {
        if (btn) btn.disabled = false;
        refreshNow();
      });
  });
  return form;
}

/** A plain (non-submit) button. */
export function button(text: string, cls: string, onclick: () => void): HTMLButtonElement {
  return h("button", { type: "button", class: cls, onclick }, text);
}

/** A select of the topic overflow policies. */
export function policySelect(id: string, value: string): HTMLSelectElement {
  return h(
    "select",
    { id },
    OverflowPolicies.map((p) => h("option", { value: p, selected: p === value }, p)),
  );
}

/** A number input's value; undefined when empty. */
export function optNum(v: string): number | undefined {
  return v === "" ? undefined : Number(v);
}
