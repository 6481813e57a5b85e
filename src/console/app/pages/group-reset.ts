/** The group page's "Reset offsets" form: a topic to a point in time, or to either end. */
import { api, enc } from "../api.ts";
import type { OffsetReset } from "../api-types.ts";
import { fill, h, hideLabel } from "../dom.ts";
import { fromLocalInput, localInput, time } from "../format.ts";
import { act, field } from "../widgets.ts";

const HOUR_MS = 3_600_000;

/**
 * The form and its result line. `setTopics` offers these topics to pick from;
 * `suggest` fills the topic field when it is empty.
 */
export function resetForm(group: string): {
  form: HTMLFormElement;
  out: HTMLElement;
  setTopics: (topics: readonly string[]) => void;
  suggest: (topic: string) => void;
} {
  const out = h("p", { class: "result", id: "reset-result" });
  const topicList = h("datalist", { id: "all-topics" });
  const topic = h("input", {
    id: "reset-topic",
    list: "all-topics",
    required: true,
    autocomplete: "off",
  });
  const at = h("input", {
    id: "reset-time",
    type: "datetime-local",
    step: 1,
    value: localInput(Date.now() - HOUR_MS),
  });
  const mode = h(
    "select",
    { id: "reset-mode", onchange: () => hideLabel(at, mode.value !== "time") },
    h("option", { value: "time" }, "a point in time"),
    h("option", { value: "earliest" }, "earliest"),
    h("option", { value: "latest" }, "latest"),
  );
  const form = h(
    "form",
    { id: "reset-form" },
    field("Topic", topic),
    field("Reset to", mode),
    field("Time (first message stored at or after)", at),
    h("button", { type: "submit" }, "Reset offsets"),
    topicList,
  );
  act(form, out, async () => {
    const t = topic.value.trim();
    let body: { timestamp: number } | { to: string };
    let what: string;
    if (mode.value === "time") {
      const ts = fromLocalInput(at.value);
      if (Number.isNaN(ts)) throw new Error("pick a time");
      body = { timestamp: ts };
      what = time(ts);
    } else {
      body = { to: mode.value };
      what = mode.value;
    }
    const question = `Move group ${group} on ${t} to ${what}? Messages in flight are handed out again.`;
    if (!confirm(question)) return undefined;
    const r = await api<OffsetReset>(
      "POST",
      `/v1/groups/${enc(group)}/topics/${enc(t)}/offsets/reset`,
      body,
    );
    return `Reset ${t} to ${what}: ${r.offsets.map((o) => `q${o.queue}→${o.offset}`).join(", ")}`;
  });

  let known: readonly string[] = [];
  return {
    form,
    out,
    setTopics(topics) {
      if (topics.join() === known.join()) return;
      known = topics;
      fill(
        topicList,
        topics.map((t) => h("option", { value: t })),
      );
    },
    suggest(t) {
      if (!topic.value) topic.value = t;
    },
  };
}
