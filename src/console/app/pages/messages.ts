/** Messages in a table, and the detail of the one clicked (topic page: browse and query). */
import type { Message } from "../api-types.ts";
import { fill, h } from "../dom.ts";
import { preview, time } from "../format.ts";
import { rowsOf, table } from "../widgets.ts";

/** A table of messages; a click on a row calls `onclick` with its message. */
export function messageTable(
  messages: readonly Message[],
  empty: string,
  onclick: (m: Message) => void,
): HTMLElement {
  return table<Message>(
    [
      { label: "Queue", num: true, get: (m) => m.queue },
      { label: "Offset", num: true, get: (m) => m.offset },
      { label: "Msg ID", cls: "mono", get: (m) => m.msgId },
      { label: "Tag", get: (m) => m.tag || "" },
      { label: "Keys", get: (m) => (m.keys || []).join(", ") },
      { label: "Stored", get: (m) => time(m.storedAt) },
      {
        label: "Body",
        cls: "body",
        get: preview,
        title: (m) => (m.encoding === "base64" ? "" : m.body.slice(0, 2000)),
      },
    ],
    rowsOf(messages, onclick, (m) => m.msgId),
    empty,
  );
}

/** Where a clicked message shows in full, as JSON. */
export function messageDetail(): { el: HTMLDivElement; show: (m: Message) => void } {
  const el = h("div", { id: "message-detail" });
  return {
    el,
    show(m) {
      fill(
        el,
        h("h3", null, `Message ${m.msgId}`),
        h("pre", { class: "detail" }, JSON.stringify(m, null, 2)),
      );
      el.scrollIntoView({ block: "nearest" });
    },
  };
}
