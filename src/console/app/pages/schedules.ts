/**
 * `#/schedules`: recurring schedules with their cron, time zone, next and
 * last fire, counts and last error; run now, pause, resume and delete.
 */
import { api, enc } from "../api.ts";
import type { ScheduleInfo, ScheduleList, ScheduleRun } from "../api-types.ts";
import { add, fill, h } from "../dom.ts";
import { errText, num, time } from "../format.ts";
import { type Refresh, refreshNow } from "../live.ts";
import { button, card, link, rowsOf, show, table } from "../widgets.ts";

function scheduleState(s: ScheduleInfo): string {
  if (s.paused) return "paused";
  return s.nextFireAt === null ? "done" : "active";
}

export function schedulesPage(view: HTMLElement): Refresh {
  const listEl = h("div", { id: "schedule-table" }, h("p", { class: "empty" }, "Loading…"));
  const out = h("p", { class: "result", id: "schedule-result" });

  function after(promise: Promise<unknown>, done: string): void {
    promise.then(
      () => {
        show(out, true, done);
        refreshNow();
      },
      (e: unknown) => show(out, false, errText(e)),
    );
  }

  function actions(s: ScheduleInfo): HTMLElement {
    const path = `/v1/schedules/${enc(s.schedule)}`;
    return h(
      "div",
      { class: "actions" },
      button("Run now", "secondary", () =>
        api<ScheduleRun>("POST", `${path}/run`).then(
          (r) => {
            show(out, true, `Sent ${r.msgId} (${r.status}).`);
            refreshNow();
          },
          (e: unknown) => show(out, false, errText(e)),
        ),
      ),
      s.paused
        ? button("Resume", "secondary", () =>
            after(api("PUT", path, { paused: false }), `Resumed ${s.schedule}.`),
          )
        : button("Pause", "secondary", () =>
            after(api("PUT", path, { paused: true }), `Paused ${s.schedule}.`),
          ),
      button("Delete", "danger", () => {
        if (!confirm(`Delete schedule ${s.schedule}? It sends nothing more.`)) return;
        after(api("DELETE", path), `Deleted ${s.schedule}.`);
      }),
    );
  }

  add(
    view,
    h("div", { class: "topbar" }, h("h1", null, "Recurring schedules")),
    card(
      "Schedules (create them with PUT /v1/schedules/{name} or `edgemq schedule put`)",
      listEl,
      out,
    ),
  );

  return async (alive) => {
    const all: ScheduleInfo[] = [];
    let next: string | null = null;
    do {
      const q = next === null ? "" : `&after=${enc(next)}`;
      const page: ScheduleList = await api<ScheduleList>("GET", `/v1/schedules?limit=1000${q}`);
      all.push(...page.schedules);
      next = page.next ?? null;
    } while (next !== null);
    if (!alive()) return;
    fill(
      listEl,
      table<ScheduleInfo>(
        [
          { label: "Schedule", cls: "mono", get: (s) => s.schedule },
          { label: "Topic", get: (s) => link(`#/topics/${enc(s.topic)}`, s.topic) },
          { label: "Cron", cls: "mono", get: (s) => s.cron },
          { label: "Time zone", get: (s) => s.timezone },
          { label: "State", get: (s) => h("span", { class: "pill" }, scheduleState(s)) },
          { label: "Next fire", get: (s) => time(s.nextFireAt) },
          { label: "Last fire", get: (s) => time(s.lastFireAt) },
          { label: "Fires", num: true, get: (s) => num(s.fires) },
          { label: "Errors", num: true, get: (s) => num(s.errors) },
          {
            label: "Last error",
            get: (s) => (s.lastError ? `${s.lastError} (${time(s.lastErrorAt)})` : "—"),
          },
          { label: "", get: actions },
        ],
        rowsOf(all, null, (s) => s.schedule),
        "No schedules yet.",
      ),
    );
  };
}
