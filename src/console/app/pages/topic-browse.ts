/** The topic page's "Browse (pull by offset)" form: pages through one queue's log. */
import { api, enc } from "../api.ts";
import type { Message, PullResult } from "../api-types.ts";
import { fill, h } from "../dom.ts";
import { errText } from "../format.ts";
import { act, field, show } from "../widgets.ts";
import { messageTable } from "./messages.ts";

/**
 * The form, its result line and the messages it pulled; `queue` is the queue
 * picker, `onclick` shows a clicked message.
 */
export function browseForm(
  topic: string,
  queue: HTMLSelectElement,
  onclick: (m: Message) => void,
): { form: HTMLFormElement; out: HTMLElement; messages: HTMLElement } {
  const messages = h("div", { id: "browse-result" });
  const out = h("p", { class: "result" });
  const offset = h("input", { id: "browse-offset", type: "number", min: 0, placeholder: "first" });
  const max = h("input", { id: "browse-max", type: "number", min: 1, max: 1000, value: 20 });
  const group = h("input", { id: "browse-group", placeholder: "optional" });
  const filter = h("input", { id: "browse-filter", placeholder: "* or TagA || TagB or sql:…" });
  let next: number | null = null;
  const nextButton = h(
    "button",
    {
      type: "button",
      id: "browse-next",
      class: "secondary",
      disabled: true,
      onclick: () => {
        if (next === null) return;
        offset.value = String(next);
        pull(String(next)).then(
          (t) => show(out, true, t),
          (e: unknown) => show(out, false, errText(e)),
        );
      },
    },
    "Next page →",
  );

  /** Pulls from `from` ("" = the group's committed offset, or the start without a group). */
  async function pull(from: string): Promise<string> {
    const q = queue.value;
    let qs = `?max=${enc(max.value || "20")}`;
    if (from !== "") qs += `&offset=${enc(from)}`;
    const g = group.value.trim();
    if (g) qs += `&group=${enc(g)}`;
    else if (from === "") qs += "&offset=0";
    const f = filter.value.trim();
    if (f) qs += `&filter=${enc(f)}`;
    const r = await api<PullResult>("GET", `/v1/topics/${enc(topic)}/queues/${q}/messages${qs}`);
    next = r.nextOffset;
    nextButton.disabled = r.nextOffset >= r.maxOffset;
    fill(messages, messageTable(r.messages, "No messages at this position.", onclick));
    return (
      `Queue ${q}: ${r.messages.length} message(s); next offset ${r.nextOffset} of ${r.maxOffset}` +
      `${r.skipped ? ` (${r.skipped} skipped: removed by retention)` : ""}.`
    );
  }

  const form = h(
    "form",
    { id: "browse-form" },
    field("Queue", queue),
    field("Offset", offset),
    field("Max", max),
    field("As group (committed offset)", group),
    field("Filter", filter),
    h("button", { type: "submit" }, "Pull"),
    nextButton,
  );
  act(form, out, () => pull(offset.value));
  return { form, out, messages };
}
