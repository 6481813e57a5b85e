/**
 * `#/push`: push subscriptions with their state, delivery counts and last
 * error, pause and resume; and a form to create one (its signing secret is
 * shown once).
 */
import { api, enc } from "../api.ts";
import type { PushInfo, PushList, PushPutResult, TopicList } from "../api-types.ts";
import { add, fill, h } from "../dom.ts";
import { errText, list, num, parseDuration, time } from "../format.ts";
import { type Refresh, refreshNow } from "../live.ts";
import { act, button, card, field, link, rowsOf, show, table } from "../widgets.ts";

/** A subscription's state in one word: paused, failing (its endpoint's last deliveries failed: backing off) or active. */
export function pushState(p: PushInfo): string {
  if (p.paused) return "paused";
  return p.stats.failures > 0 ? "failing" : "active";
}

/** Pauses or resumes a subscription, saying so in `out`. */
export function setPaused(name: string, paused: boolean, out: HTMLElement): void {
  api<PushPutResult>("PUT", `/v1/push/${enc(name)}`, { paused }).then(
    () => {
      show(out, true, `${paused ? "Paused" : "Resumed"} ${name}.`);
      refreshNow();
    },
    (e: unknown) => show(out, false, errText(e)),
  );
}

function createForm(): {
  form: HTMLFormElement;
  out: HTMLElement;
  topic: HTMLSelectElement;
} {
  const out = h("p", { class: "result", id: "push-result" });
  const name = h("input", { id: "push-name", required: true, pattern: "[A-Za-z0-9_\\-]{1,127}" });
  const topic = h("select", { id: "push-topic", required: true });
  const url = h("input", {
    id: "push-url",
    type: "url",
    required: true,
    placeholder: "https://app.example.com/edgemq-push",
  });
  const concurrency = h("input", {
    id: "push-concurrency",
    type: "number",
    min: 1,
    max: 256,
    value: 8,
  });
  const timeout = h("input", { id: "push-timeout", value: "10s" });
  const delays = h("input", {
    id: "push-delays",
    placeholder: "10s, 30s, 1min (default: the group's levels)",
  });
  const orderly = h("input", { id: "push-orderly", type: "checkbox" });
  const form = h(
    "form",
    { id: "push-form" },
    field("Name (also its consumer group)", name),
    field("Topic", topic),
    field("Endpoint URL", url),
    field("Max concurrency", concurrency),
    field("Timeout", timeout),
    field("Retry delays", delays),
    field("Orderly (one message per sharding key at a time)", orderly),
    h("button", { type: "submit" }, "Create push subscription"),
  );
  act(form, out, async () => {
    const n = name.value.trim();
    const body: Record<string, unknown> = {
      topic: topic.value,
      url: url.value.trim(),
      maxConcurrency: Number(concurrency.value),
      timeoutMs: parseDuration(timeout.value),
      orderly: orderly.checked,
    };
    const d = list(delays.value);
    if (d.length) body.retryDelaysMs = d.map(parseDuration);
    const saved = await api<PushPutResult>("PUT", `/v1/push/${enc(n)}`, body);
    return saved.signingSecret === undefined
      ? `Saved push subscription ${n}.`
      : `Saved push subscription ${n}. Signing secret for its endpoint's createPushHandler (shown once): ${saved.signingSecret}`;
  });
  return { form, out, topic };
}

export function pushPage(view: HTMLElement): Refresh {
  const listEl = h("div", { id: "push-table" }, h("p", { class: "empty" }, "Loading…"));
  const out = h("p", { class: "result", id: "push-list-result" });
  const create = createForm();
  add(
    view,
    h("div", { class: "topbar" }, h("h1", null, "Push subscriptions")),
    card("Subscriptions (the broker POSTs each message to the endpoint)", listEl, out),
    card("New push subscription", create.form, create.out),
  );

  return async (alive) => {
    const [{ push }, { topics }] = await Promise.all([
      api<PushList>("GET", "/v1/push"),
      api<TopicList>("GET", "/v1/topics"),
    ]);
    // A subscription whose shards do not answer shows without stats rather than failing the page.
    const infos = await Promise.all(
      push.map((p) => api<PushInfo>("GET", `/v1/push/${enc(p.name)}`).catch(() => null)),
    );
    if (!alive()) return;
    if (create.topic.options.length !== topics.length) {
      const chosen = create.topic.value;
      fill(
        create.topic,
        topics.map((t) => h("option", { value: t.topic, selected: t.topic === chosen }, t.topic)),
      );
    }
    const rows = infos.filter((p): p is PushInfo => p !== null);
    fill(
      listEl,
      table<PushInfo>(
        [
          { label: "Name", get: (p) => link(`#/push/${enc(p.name)}`, p.name) },
          { label: "Topic", get: (p) => link(`#/topics/${enc(p.topic)}`, p.topic) },
          { label: "Endpoint", cls: "mono", get: (p) => p.url },
          {
            label: "State",
            get: (p) => h("span", { class: `pill ${pushState(p)}` }, pushState(p)),
          },
          { label: "Delivered", num: true, get: (p) => num(p.stats.delivered) },
          { label: "Failed", num: true, get: (p) => num(p.stats.failed) },
          { label: "In flight", num: true, get: (p) => num(p.stats.inflight) },
          { label: "Lag", num: true, get: (p) => num(p.stats.lag) },
          { label: "DLQ", num: true, get: (p) => num(p.stats.dlq) },
          {
            label: "Last error",
            get: (p) =>
              p.stats.lastError ? `${p.stats.lastError} (${time(p.stats.lastErrorAt)})` : "—",
          },
          {
            label: "",
            get: (p) =>
              h(
                "div",
                { class: "actions" },
                p.paused
                  ? button("Resume", "secondary", () => setPaused(p.name, false, out))
                  : button("Pause", "secondary", () => setPaused(p.name, true, out)),
              ),
          },
        ],
        rowsOf(rows, null, (p) => p.name),
        "No push subscriptions yet.",
      ),
    );
  };
}
