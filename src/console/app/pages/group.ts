/**
 * `#/groups/{group}`: its config and members, lag per queue of each topic it
 * consumes (bar chart and history), offset reset, the dead-letter queue, delete.
 */
import { api, enc } from "../api.ts";
import type {
  GroupDetails,
  GroupMember,
  GroupQueueStats,
  MessageList,
  TopicList,
} from "../api-types.ts";
import { barChart, sparkline } from "../charts.ts";
import { add, fill, h } from "../dom.ts";
import { duration, errText, num } from "../format.ts";
import type { Refresh } from "../live.ts";
import { pushHistory, sum } from "../rates.ts";
import { button, card, link, links, rowsOf, table } from "../widgets.ts";
import { deadLetters } from "./group-dlq.ts";
import { resetForm } from "./group-reset.ts";

function configList(g: GroupDetails, subscribed: readonly string[]): HTMLElement {
  return h(
    "dl",
    { class: "kv" },
    h("dt", null, "Mode"),
    h("dd", null, g.orderly ? "orderly" : "concurrent"),
    h("dt", null, "Max reconsume times"),
    h("dd", null, g.maxReconsumeTimes),
    h("dt", null, "Retry delays"),
    h("dd", null, (g.retryDelaysMs || []).map(duration).join(", ")),
    h("dt", null, "Topics"),
    h("dd", null, subscribed.length ? links(subscribed, (t) => `#/topics/${enc(t)}`) : "none yet"),
  );
}

function membersTable(members: readonly GroupMember[]): HTMLElement {
  return table<GroupMember>(
    [
      { label: "Client", cls: "mono", get: (m) => m.clientId },
      { label: "Topics", get: (m) => (m.topics || []).join(", ") },
      { label: "Last heartbeat", get: (m) => `${duration(Date.now() - m.lastSeen)} ago` },
    ],
    rowsOf(members),
    "No live members (members heartbeat; receive-only consumers do not show here).",
  );
}

/** One topic's lag: total, per-queue bars, the total's recent history and the numbers. */
function topicLag(group: string, topic: string, stats: readonly GroupQueueStats[]): HTMLElement {
  const total = sum(stats, (s) => s.lag);
  const hist = pushHistory(`${group}\u0000${topic}`, total);
  return h(
    "div",
    { class: "topic-lag", "data-topic": topic },
    h(
      "h3",
      null,
      link(`#/topics/${enc(topic)}`, topic),
      " ",
      h("span", { class: "pill" }, `lag ${num(total)}`),
    ),
    h(
      "div",
      { class: "chart-row" },
      h(
        "div",
        null,
        barChart(
          stats.map((s) => s.lag),
          stats.map((s) => `q${s.queue}`),
          `lag per queue of ${topic}`,
        ),
        h("div", { class: "caption" }, "lag per queue"),
      ),
      h(
        "div",
        null,
        sparkline(hist, `total lag of ${topic}`),
        h("div", { class: "caption" }, `total lag, last ${hist.length} refreshes`),
      ),
    ),
    table<GroupQueueStats>(
      [
        { label: "Queue", num: true, get: (s) => s.queue },
        { label: "Offset", num: true, get: (s) => num(s.offset) },
        { label: "Max offset", num: true, get: (s) => num(s.maxOffset) },
        { label: "Lag", num: true, get: (s) => num(s.lag) },
        { label: "In flight", num: true, get: (s) => num(s.inflight) },
        { label: "Retrying", num: true, get: (s) => num(s.retrying) },
        { label: "DLQ", num: true, get: (s) => num(s.dlq) },
      ],
      rowsOf(stats, null, (s) => `${topic}#${s.queue}`),
    ),
  );
}

export function groupPage(view: HTMLElement, group: string): Refresh {
  const info = h("div", null, h("p", { class: "empty" }, "Loading…"));
  const membersEl = h("div");
  const lagEl = h("div", { id: "lag" });
  const reset = resetForm(group);
  const dlq = deadLetters(group);

  add(
    view,
    h(
      "div",
      { class: "topbar" },
      h("h1", null, "Consumer group ", h("span", { class: "mono" }, group)),
      h("a", { href: "#/groups" }, "← all groups"),
    ),
    h("div", { class: "cols" }, card("Configuration", info), card("Members", membersEl)),
    card("Lag per queue", lagEl),
    card("Reset offsets", reset.form, reset.out),
    card("Dead-letter queue", dlq.el, dlq.actions, dlq.out),
    card(
      null,
      h(
        "div",
        { class: "actions" },
        button("Delete group", "danger", () => {
          const question = `Delete group ${group}? Its offsets on the shards stay until the topic is deleted.`;
          if (!confirm(question)) return;
          api("DELETE", `/v1/groups/${enc(group)}`).then(
            () => {
              location.hash = "#/groups";
            },
            (e: unknown) => alert(errText(e)),
          );
        }),
      ),
    ),
  );

  return async (alive) => {
    const [g, { messages }, { topics }] = await Promise.all([
      api<GroupDetails>("GET", `/v1/groups/${enc(group)}`),
      api<MessageList>("GET", `/v1/groups/${enc(group)}/dlq/messages?limit=200`),
      api<TopicList>("GET", "/v1/topics"),
    ]);
    if (!alive()) return;
    reset.setTopics(topics.map((t) => t.topic));
    const subscribed = Object.keys(g.topics || {}).sort();
    if (subscribed[0] !== undefined) reset.suggest(subscribed[0]);
    fill(info, configList(g, subscribed));
    fill(membersEl, membersTable(g.members || []));
    fill(
      lagEl,
      subscribed.length
        ? subscribed.map((t) => topicLag(group, t, g.topics[t] ?? []))
        : h(
            "p",
            { class: "empty" },
            "This group consumes no topic yet. Reset its offsets on a topic below to start it there.",
          ),
    );
    dlq.render(messages);
  };
}
