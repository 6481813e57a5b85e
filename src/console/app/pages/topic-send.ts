/** The topic page's "Send a test message" form. */
import { api, enc } from "../api.ts";
import type { SendResponse } from "../api-types.ts";
import type { MessageInput } from "../../../protocol/types.ts";
import { h } from "../dom.ts";
import { list, parseDuration } from "../format.ts";
import { act, field } from "../widgets.ts";

/** The form and its result line; `queue` is the queue picker ("" = let the broker route). */
export function sendForm(
  topic: string,
  queue: HTMLSelectElement,
): { form: HTMLFormElement; out: HTMLElement } {
  const out = h("p", { class: "result", id: "send-result" });
  const body = h("textarea", {
    id: "send-body",
    required: true,
    placeholder: '{"hello": "world"}',
  });
  const tag = h("input", { id: "send-tag", placeholder: "TagA" });
  const keys = h("input", { id: "send-keys", placeholder: "order-17" });
  const props = h("input", { id: "send-props", placeholder: "region=eu" });
  const sharding = h("input", { id: "send-sharding", placeholder: "user-42" });
  const delay = h("input", { id: "send-delay", placeholder: "e.g. 10s" });
  const form = h(
    "form",
    { id: "send-form", class: "stack" },
    field("Body", body),
    h(
      "div",
      { class: "actions" },
      field("Tag", tag),
      field("Keys (comma-separated)", keys),
      field("Properties (k=v, …)", props),
      field("Sharding key", sharding),
      field("Queue", queue),
      field("Delay", delay),
      h("button", { type: "submit" }, "Send"),
    ),
  );
  act(form, out, async () => {
    const m: MessageInput = { body: body.value };
    if (tag.value.trim()) m.tag = tag.value.trim();
    const keyList = list(keys.value);
    if (keyList.length) m.keys = keyList;
    const pairs = list(props.value);
    if (pairs.length) {
      const properties: Record<string, string> = {};
      for (const p of pairs) {
        const i = p.indexOf("=");
        if (i < 1) throw new Error(`properties are k=v pairs: ${p}`);
        properties[p.slice(0, i).trim()] = p.slice(i + 1).trim();
      }
      m.properties = properties;
    }
    if (sharding.value.trim()) m.shardingKey = sharding.value.trim();
    if (delay.value.trim()) m.delayMs = parseDuration(delay.value.trim());
    const q = queue.value;
    const r = await api<SendResponse>(
      "POST",
      `/v1/topics/${enc(topic)}/messages${q ? `?queue=${q}` : ""}`,
      { messages: [m] },
    );
    const x = r.results[0];
    if (!x) throw new Error("the broker answered no result");
    return `${x.status}: ${x.msgId} on queue ${x.queue}${x.offset === null ? "" : ` at offset ${x.offset}`}`;
  });
  return { form, out };
}
