/** The topic config form: create a topic (overview) or change one (topic page). */
import type { OverflowPolicy, TopicConfig, TopicConfigBody } from "../api-types.ts";
import { h } from "../dom.ts";
import { act, field, optNum, policySelect } from "../widgets.ts";

const HOUR_MS = 3_600_000;

/**
 * A form whose control ids start with `prefix`. Without `initial` it asks for
 * a name (create); with it, it starts from that config and cannot lower the
 * queue count (change). `onsubmit` resolves with the text to show.
 */
export function topicConfigForm(
  prefix: string,
  initial: TopicConfig | null,
  submitLabel: string,
  onsubmit: (name: string, body: TopicConfigBody) => Promise<string>,
): HTMLDivElement {
  const c: Partial<TopicConfig> = initial ?? {};
  const out = h("p", { class: "result" });
  const name = initial
    ? null
    : h("input", {
        id: `${prefix}-name`,
        required: true,
        pattern: "[A-Za-z0-9_\\-]{1,127}",
        placeholder: "orders",
      });
  const queues = h("input", {
    id: `${prefix}-queues`,
    type: "number",
    min: initial ? c.queues : 1,
    max: 256,
    value: c.queues || 4,
  });
  const retention = h("input", {
    id: `${prefix}-retention`,
    type: "number",
    min: 0.001,
    step: "any",
    value: (c.retentionMs || 259_200_000) / HOUR_MS,
  });
  const maxBytes = h("input", {
    id: `${prefix}-maxbytes`,
    type: "number",
    min: 1,
    value: c.maxMessageBytes || 1_048_576,
  });
  const backlog = h("input", {
    id: `${prefix}-backlog`,
    type: "number",
    min: 1,
    placeholder: "none",
    value: c.maxBacklogMessages == null ? "" : c.maxBacklogMessages,
  });
  const backlogBytes = h("input", {
    id: `${prefix}-backlogbytes`,
    type: "number",
    min: 1,
    placeholder: "none",
    value: c.maxBacklogBytes == null ? "" : c.maxBacklogBytes,
  });
  const policy = policySelect(`${prefix}-policy`, c.overflowPolicy || "reject");
  const form = h(
    "form",
    { id: `${prefix}-form` },
    name && field("Name", name),
    field("Queues", queues),
    field("Retention (hours)", retention),
    field("Max message bytes", maxBytes),
    field("Max backlog msgs/queue", backlog),
    field("Max backlog bytes/queue", backlogBytes),
    field("Overflow policy", policy),
    h("button", { type: "submit" }, submitLabel),
  );
  act(form, out, () => {
    const body: TopicConfigBody = {
      queues: Number(queues.value),
      retentionMs: Math.round(Number(retention.value) * HOUR_MS),
      maxMessageBytes: Number(maxBytes.value),
      maxBacklogMessages: optNum(backlog.value) ?? null,
      maxBacklogBytes: optNum(backlogBytes.value) ?? null,
      // The broker checks it (the select offers only the policies).
      overflowPolicy: policy.value as OverflowPolicy,
    };
    return onsubmit(initial ? initial.topic : (name?.value ?? "").trim(), body);
  });
  return h("div", null, form, out);
}
