/** The topic page's "Query messages" form: by message ID (with each group's state), key or store time. */
import { api, enc } from "../api.ts";
import type { Message, MessageList, QueriedMessage } from "../api-types.ts";
import { fill, h, hideLabel } from "../dom.ts";
import { fromLocalInput, localInput } from "../format.ts";
import { act, field, link, rowsOf, table } from "../widgets.ts";
import { messageTable } from "./messages.ts";

const HOUR_MS = 3_600_000;

/** The form, its result line and what it found; `onclick` shows a clicked message. */
export function queryForm(
  topic: string,
  onclick: (m: Message) => void,
): { form: HTMLFormElement; out: HTMLElement; results: HTMLElement } {
  const results = h("div", { id: "query-result" });
  const out = h("p", { class: "result" });
  const now = Date.now();
  const by = h(
    "select",
    { id: "query-by", onchange: () => syncQuery() },
    h("option", { value: "id" }, "Message ID"),
    h("option", { value: "key" }, "Key"),
    h("option", { value: "time" }, "Store time"),
  );
  const text = h("input", { id: "query-text" });
  const from = h("input", {
    id: "query-from",
    type: "datetime-local",
    step: 1,
    value: localInput(now - HOUR_MS),
  });
  const to = h("input", {
    id: "query-to",
    type: "datetime-local",
    step: 1,
    value: localInput(now + 60_000),
  });
  const limit = h("input", { id: "query-limit", type: "number", min: 1, max: 1000, value: 100 });
  const form = h(
    "form",
    { id: "query-form" },
    field("By", by),
    field("Message ID or key", text),
    field("From", from),
    field("To", to),
    field("Limit", limit),
    h("button", { type: "submit" }, "Query"),
  );
  /** Shows the text field for ID and key, the two times for store time. */
  function syncQuery(): void {
    hideLabel(text, by.value === "time");
    hideLabel(from, by.value !== "time");
    hideLabel(to, by.value !== "time");
  }
  syncQuery();

  const base = `/v1/topics/${enc(topic)}/messages`;
  act(form, out, async () => {
    const t = text.value.trim();
    const max = limit.value || "100";
    if (by.value === "id") {
      if (!t) throw new Error("enter a message ID");
      const m = await api<QueriedMessage>("GET", `${base}/${enc(t)}`);
      const groups = Object.keys(m.groups || {});
      fill(
        results,
        messageTable([m], "", onclick),
        h("h3", null, "State per consumer group"),
        table<string>(
          [
            { label: "Group", get: (g) => link(`#/groups/${enc(g)}`, g) },
            {
              label: "State",
              get: (g) =>
                h("span", { class: m.groups[g] === "dlq" ? "pill bad" : "pill" }, m.groups[g]),
            },
          ],
          rowsOf(groups),
          "No consumer group has seen this topic.",
        ),
      );
      return `Found ${m.msgId} on queue ${m.queue} at offset ${m.offset}.`;
    }
    let qs: string;
    if (by.value === "key") {
      if (!t) throw new Error("enter a key");
      qs = `?key=${enc(t)}&limit=${enc(max)}`;
    } else {
      const f = fromLocalInput(from.value);
      const u = fromLocalInput(to.value);
      if (Number.isNaN(f) || Number.isNaN(u)) throw new Error("pick both times");
      qs = `?from=${f}&to=${u}&limit=${enc(max)}`;
    }
    const r = await api<MessageList>("GET", base + qs);
    fill(results, messageTable(r.messages, "No messages match.", onclick));
    return `${r.messages.length} message(s).`;
  });
  return { form, out, results };
}
