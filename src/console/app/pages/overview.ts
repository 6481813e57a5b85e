/** `#/`: headline figures, every topic with its backlog and rates, and creating a topic. */
import { api, enc } from "../api.ts";
import type { GroupList, TopicConfig, TopicDetails, TopicList } from "../api-types.ts";
import { add, fill, h, setText } from "../dom.ts";
import { bytes, num, rate } from "../format.ts";
import type { Refresh } from "../live.ts";
import { rates, sum } from "../rates.ts";
import { card, link, links, rowsOf, stat, table } from "../widgets.ts";
import { topicConfigForm } from "./topic-config-form.ts";

interface TopicRow {
  topic: string;
  queues: number;
  messages: number;
  bytes: number;
  scheduled: number;
  dropped: number;
  in: number | null;
  out: number | null;
  groups: string[];
}

export function overviewPage(view: HTMLElement): Refresh {
  const topicsEl = h("div", { id: "topics-table" }, h("p", { class: "empty" }, "Loading…"));
  add(
    view,
    h("div", { class: "topbar" }, h("h1", null, "Overview")),
    h(
      "div",
      { class: "stats" },
      stat("Topics", "stat-topics"),
      stat("Consumer groups", "stat-groups"),
      stat("Backlog (messages)", "stat-backlog"),
      stat("Backlog (bytes)", "stat-bytes"),
      stat("In (msg/s)", "stat-in"),
      stat("Out (msg/s)", "stat-out"),
    ),
    card("Topics", topicsEl),
    card(
      "Create a topic",
      topicConfigForm("new-topic", null, "Create topic", async (name, body) => {
        const t = await api<TopicConfig>("PUT", `/v1/topics/${enc(name)}`, body);
        return `Created topic ${t.topic} with ${t.queues} queues.`;
      }),
    ),
  );

  return async (alive) => {
    const [{ topics }, { groups }] = await Promise.all([
      api<TopicList>("GET", "/v1/topics"),
      api<GroupList>("GET", "/v1/groups"),
    ]);
    // A topic whose shards do not answer still shows, with its config only.
    const details = await Promise.all(
      topics.map((t) =>
        api<TopicDetails>("GET", `/v1/topics/${enc(t.topic)}`).catch((): TopicDetails => ({
          queueStats: [],
          groups: [],
          ...t,
        })),
      ),
    );
    if (!alive()) return;
    let totIn = 0;
    let totOut = 0;
    let anyRate = false;
    const rows = details.map((d): TopicRow => {
      const q = d.queueStats || [];
      const rr = rates(
        `topic:${d.topic}`,
        sum(q, (x) => x.sent),
        sum(q, (x) => x.delivered),
      );
      if (rr.in !== null && rr.out !== null) {
        anyRate = true;
        totIn += rr.in;
        totOut += rr.out;
      }
      return {
        topic: d.topic,
        queues: d.queues,
        messages: sum(q, (x) => x.messages),
        bytes: sum(q, (x) => x.bytes),
        scheduled: sum(q, (x) => x.scheduled),
        dropped: sum(q, (x) => x.dropped),
        in: rr.in,
        out: rr.out,
        groups: d.groups || [],
      };
    });
    setText("stat-topics", num(topics.length));
    setText("stat-groups", num(groups.length));
    setText("stat-backlog", num(sum(rows, (x) => x.messages)));
    setText("stat-bytes", bytes(sum(rows, (x) => x.bytes)));
    setText("stat-in", anyRate ? rate(totIn) : "—");
    setText("stat-out", anyRate ? rate(totOut) : "—");
    fill(
      topicsEl,
      table<TopicRow>(
        [
          { label: "Topic", get: (t) => link(`#/topics/${enc(t.topic)}`, t.topic) },
          { label: "Queues", num: true, get: (t) => num(t.queues) },
          { label: "Backlog", num: true, get: (t) => num(t.messages) },
          { label: "Size", num: true, get: (t) => bytes(t.bytes) },
          { label: "In msg/s", num: true, get: (t) => rate(t.in) },
          { label: "Out msg/s", num: true, get: (t) => rate(t.out) },
          { label: "Scheduled", num: true, get: (t) => num(t.scheduled) },
          { label: "Dropped", num: true, get: (t) => num(t.dropped) },
          { label: "Groups", get: (t) => links(t.groups, (g) => `#/groups/${enc(g)}`) },
        ],
        rowsOf(rows, null, (t) => t.topic),
        "No topics yet: create one below.",
      ),
    );
  };
}
