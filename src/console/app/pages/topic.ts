/**
 * `#/topics/{topic}`: its config and queues, sending a test message, browsing
 * a queue, querying messages, changing the config, purge and delete.
 */
import { api, enc } from "../api.ts";
import type { QueueStats, TopicConfig, TopicDetails } from "../api-types.ts";
import { add, fill, h } from "../dom.ts";
import { bytes, duration, errText, num, rate, time } from "../format.ts";
import { refreshNow, type Refresh } from "../live.ts";
import { type Rates, rates } from "../rates.ts";
import { button, card, links, rowsOf, table } from "../widgets.ts";
import { messageDetail } from "./messages.ts";
import { browseForm } from "./topic-browse.ts";
import { topicConfigForm } from "./topic-config-form.ts";
import { queryForm } from "./topic-query.ts";
import { sendForm } from "./topic-send.ts";

/** Queue pickers that grow with the topic's queue count (it can be raised, never lowered). */
class QueueSelects {
  readonly #selects: { el: HTMLSelectElement; auto: boolean }[] = [];

  /** A new picker; `withAuto` adds a first "auto" option (value ""). */
  select(id: string, withAuto: boolean): HTMLSelectElement {
    const el = h("select", { id }, withAuto ? h("option", { value: "" }, "auto") : null);
    this.#selects.push({ el, auto: withAuto });
    return el;
  }

  /** Adds options up to queue `n - 1` to every picker. */
  sync(n: number): void {
    for (const q of this.#selects) {
      const have = q.el.options.length - (q.auto ? 1 : 0);
      for (let i = have; i < n; i++) q.el.append(h("option", { value: String(i) }, String(i)));
    }
  }
}

function configList(d: TopicDetails): HTMLElement {
  const bound =
    d.maxBacklogMessages === null && d.maxBacklogBytes === null
      ? "none"
      : `${[
          d.maxBacklogMessages !== null ? `${num(d.maxBacklogMessages)} msgs` : null,
          d.maxBacklogBytes !== null ? bytes(d.maxBacklogBytes) : null,
        ]
          .filter(Boolean)
          .join(", ")} (${d.overflowPolicy})`;
  const groups = d.groups || [];
  return h(
    "dl",
    { class: "kv" },
    h("dt", null, "Queues"),
    h("dd", null, d.queues),
    h("dt", null, "Retention"),
    h("dd", null, duration(d.retentionMs)),
    h("dt", null, "Max message size"),
    h("dd", null, bytes(d.maxMessageBytes)),
    h("dt", null, "Backlog bound / queue"),
    h("dd", null, bound),
    h("dt", null, "Created"),
    h("dd", null, time(d.createdAt)),
    h("dt", null, "Consumer groups"),
    h("dd", null, groups.length ? links(groups, (g) => `#/groups/${enc(g)}`) : "none yet"),
  );
}

type QueueRow = QueueStats & Rates;

function queuesTable(rows: readonly QueueRow[]): HTMLElement {
  return table<QueueRow>(
    [
      { label: "Queue", num: true, get: (q) => q.queue },
      { label: "Min offset", num: true, get: (q) => num(q.minOffset) },
      { label: "Max offset", num: true, get: (q) => num(q.maxOffset) },
      { label: "Messages", num: true, get: (q) => num(q.messages) },
      { label: "Size", num: true, get: (q) => bytes(q.bytes) },
      { label: "Scheduled", num: true, get: (q) => num(q.scheduled) },
      { label: "Dropped", num: true, get: (q) => num(q.dropped) },
      { label: "Expired", num: true, get: (q) => num(q.expired) },
      { label: "In msg/s", num: true, get: (q) => rate(q.in) },
      { label: "Out msg/s", num: true, get: (q) => rate(q.out) },
    ],
    rowsOf(rows, null, (q) => `q${q.queue}`),
  );
}

function dangerZone(topic: string): HTMLElement {
  return h(
    "div",
    { class: "actions" },
    button("Purge all messages", "danger", () => {
      if (!confirm(`Delete every stored message of ${topic}? Config and group offsets stay.`)) {
        return;
      }
      api("POST", `/v1/topics/${enc(topic)}/purge`).then(
        () => refreshNow(),
        (e: unknown) => alert(errText(e)),
      );
    }),
    button("Delete topic", "danger", () => {
      if (!confirm(`Delete topic ${topic} and all its data?`)) return;
      api("DELETE", `/v1/topics/${enc(topic)}`).then(
        () => {
          location.hash = "#/";
        },
        (e: unknown) => alert(errText(e)),
      );
    }),
  );
}

export function topicPage(view: HTMLElement, topic: string): Refresh {
  let config: TopicDetails | null = null;
  const info = h("div", null, h("p", { class: "empty" }, "Loading…"));
  const queuesEl = h("div", { id: "queues-table" });
  const queues = new QueueSelects();
  const detail = messageDetail();
  const send = sendForm(topic, queues.select("send-queue", true));
  const browse = browseForm(topic, queues.select("browse-queue", false), detail.show);
  const query = queryForm(topic, detail.show);
  // Filled once, on the first refresh: a refresh must not clobber what is being typed.
  const editEl = h("div");

  add(
    view,
    h(
      "div",
      { class: "topbar" },
      h("h1", null, "Topic ", h("span", { class: "mono" }, topic)),
      h("a", { href: "#/" }, "← all topics"),
    ),
    h(
      "div",
      { class: "cols" },
      card("Configuration", info),
      card("Send a test message", send.form, send.out),
    ),
    card("Queues", queuesEl),
    card("Browse (pull by offset)", browse.form, browse.out, browse.messages, detail.el),
    card("Query messages", query.form, query.out, query.results),
    card("Change configuration", editEl),
    card("Danger zone", dangerZone(topic)),
  );

  return async (alive) => {
    const d = await api<TopicDetails>("GET", `/v1/topics/${enc(topic)}`);
    if (!alive()) return;
    const first = config === null;
    config = d;
    queues.sync(d.queues);
    fill(info, configList(d));
    fill(
      queuesEl,
      queuesTable(
        d.queueStats.map((q) => ({
          ...rates(`queue:${topic}#${q.queue}`, q.sent, q.delivered),
          ...q,
        })),
      ),
    );
    if (first) {
      fill(
        editEl,
        topicConfigForm("edit-topic", d satisfies TopicConfig, "Save", async (name, body) => {
          await api<TopicConfig>("PUT", `/v1/topics/${enc(name)}`, body);
          return "Saved.";
        }),
      );
    }
  };
}
