/**
 * The console's only way to make DOM: `h()` builds elements from attributes
 * and children, and children are always text nodes or elements, never parsed
 * markup (no innerHTML anywhere), so a message body cannot inject HTML.
 */

/** A child of {@link h}: nested arrays flatten; null, undefined and false are skipped. */
export type Child = Node | string | number | null | undefined | false | readonly Child[];

/** An attribute value; null, undefined and false leave the attribute out, true sets it empty. */
export type AttrValue = string | number | boolean | null | undefined;

/**
 * Attributes of {@link h}. A key starting with `on` adds that event's
 * listener; the keys in {@link PROPS} are set as properties (so `value` and
 * `checked` are what the control shows, not just its default).
 */
export type Attrs = Readonly<Record<string, AttrValue | ((ev: Event) => void)>>;

const SVG_NS = "http://www.w3.org/2000/svg";
const PROPS = new Set([
  "value",
  "checked",
  "disabled",
  "hidden",
  "selected",
  "required",
  "readOnly",
  "type",
]);

/** An HTML element, or an SVG one with the `svg:` prefix (`h("svg:rect", …)`). */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Attrs | null,
  ...children: Child[]
): HTMLElementTagNameMap[K];
export function h<K extends keyof SVGElementTagNameMap>(
  tag: `svg:${K}`,
  attrs?: Attrs | null,
  ...children: Child[]
): SVGElementTagNameMap[K];
export function h(tag: string, attrs?: Attrs | null, ...children: Child[]): Element {
  const svg = tag.startsWith("svg:");
  const el = svg ? document.createElementNS(SVG_NS, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === null || v === undefined || v === false) continue;
    if (typeof v === "function") {
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    } else if (PROPS.has(k) && !svg) {
      (el as unknown as Record<string, unknown>)[k] = v;
    } else {
      el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  return add(el, ...children);
}

/** Appends children to `el` (see {@link Child}) and returns it. */
export function add<E extends Element>(el: E, ...children: Child[]): E {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) add(el, ...(c as readonly Child[]));
    else el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/** Replaces the children of `el`. */
export function fill<E extends Element>(el: E, ...children: Child[]): E {
  el.replaceChildren();
  return add(el, ...children);
}

/** The element `sel` matches under `root` (default: the document); throws when there is none. */
export function $<E extends Element = HTMLElement>(sel: string, root: ParentNode = document): E {
  const el = root.querySelector<E>(sel);
  if (!el) throw new Error(`the console has no ${sel}`);
  return el;
}

/** Sets the text of the element with this id, if the page still shows it. */
export function setText(id: string, text: string): void {
  const el = document.getElementById(id);
  if (el) el.textContent = text;
}

/** Hides or shows the `<label>` around a form control. */
export function hideLabel(control: Element, hidden: boolean): void {
  const label = control.parentElement;
  if (label) label.hidden = hidden;
}
