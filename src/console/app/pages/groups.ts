/** `#/groups`: every consumer group with its lag, and creating or updating one. */
import { api, enc } from "../api.ts";
import type { GroupConfig, GroupDetails, GroupList, GroupQueueStats } from "../api-types.ts";
import { add, fill, h } from "../dom.ts";
import { list, num, parseDuration } from "../format.ts";
import type { Refresh } from "../live.ts";
import { sum } from "../rates.ts";
import { act, card, field, link, rowsOf, table } from "../widgets.ts";

interface GroupRow {
  group: string;
  topics: string[];
  lag: number;
  inflight: number;
  retrying: number;
  dlq: number;
  members: number;
  orderly: boolean;
  max: number;
}

function groupForm(): { form: HTMLFormElement; out: HTMLElement } {
  const out = h("p", { class: "result" });
  const name = h("input", { id: "group-name", required: true, pattern: "[A-Za-z0-9_\\-]{1,127}" });
  const max = h("input", { id: "group-max", type: "number", min: 0, value: 16 });
  const delays = h("input", { id: "group-delays", placeholder: "10s, 30s, 1m" });
  const orderly = h("input", { id: "group-orderly", type: "checkbox" });
  const form = h(
    "form",
    { id: "group-form" },
    field("Name", name),
    field("Max reconsume times", max),
    field("Retry delays (comma-separated, blank: default)", delays),
    h("label", { class: "inline" }, orderly, "Orderly"),
    h("button", { type: "submit" }, "Save group"),
  );
  act(form, out, async () => {
    const body: Partial<GroupConfig> = {
      maxReconsumeTimes: Number(max.value),
      orderly: orderly.checked,
    };
    const delayList = list(delays.value);
    if (delayList.length) body.retryDelaysMs = delayList.map(parseDuration);
    const g = await api<GroupConfig>("PUT", `/v1/groups/${enc(name.value.trim())}`, body);
    return `Saved group ${g.group}.`;
  });
  return { form, out };
}

export function groupsPage(view: HTMLElement): Refresh {
  const listEl = h("div", { id: "groups-table" }, h("p", { class: "empty" }, "Loading…"));
  const { form, out } = groupForm();
  add(
    view,
    h("div", { class: "topbar" }, h("h1", null, "Consumer groups")),
    card(null, listEl),
    card("Create or update a group", form, out),
  );

  return async (alive) => {
    const { groups: configs } = await api<GroupList>("GET", "/v1/groups");
    // A group whose details fail still shows, with its config only.
    const groups = await Promise.all(
      configs.map((g) =>
        api<GroupDetails>("GET", `/v1/groups/${enc(g.group)}`).catch((): GroupDetails => ({
          topics: {},
          members: [],
          ...g,
        })),
      ),
    );
    if (!alive()) return;
    const rows = groups.map((g): GroupRow => {
      const all: GroupQueueStats[] = Object.values(g.topics || {}).flat();
      return {
        group: g.group,
        topics: Object.keys(g.topics || {}),
        lag: sum(all, (s) => s.lag),
        inflight: sum(all, (s) => s.inflight),
        retrying: sum(all, (s) => s.retrying),
        dlq: sum(all, (s) => s.dlq),
        members: (g.members || []).length,
        orderly: g.orderly,
        max: g.maxReconsumeTimes,
      };
    });
    fill(
      listEl,
      table<GroupRow>(
        [
          { label: "Group", get: (g) => link(`#/groups/${enc(g.group)}`, g.group) },
          { label: "Topics", get: (g) => g.topics.join(", ") },
          { label: "Lag", num: true, get: (g) => num(g.lag) },
          { label: "In flight", num: true, get: (g) => num(g.inflight) },
          { label: "Retrying", num: true, get: (g) => num(g.retrying) },
          { label: "DLQ", num: true, get: (g) => num(g.dlq) },
          { label: "Members", num: true, get: (g) => num(g.members) },
          { label: "Mode", get: (g) => (g.orderly ? "orderly" : "concurrent") },
          { label: "Max reconsume", num: true, get: (g) => num(g.max) },
        ],
        rowsOf(rows, null, (g) => g.group),
        "No consumer groups yet: they appear on first receive, pull or offset reset.",
      ),
    );
  };
}
