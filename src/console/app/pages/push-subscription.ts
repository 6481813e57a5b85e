/**
 * `#/push/{name}`: one push subscription: its config and state, delivery
 * counts and last error, pause and resume, a new signing secret, the
 * dead-letter queue of its group with resend, delete.
 */
import { api, enc } from "../api.ts";
import type { MessageList, PushInfo, PushPutResult } from "../api-types.ts";
import { add, fill, h } from "../dom.ts";
import { duration, errText, num, time } from "../format.ts";
import { type Refresh, refreshNow } from "../live.ts";
import { button, card, link, show } from "../widgets.ts";
import { deadLetters } from "./group-dlq.ts";
import { pushState, setPaused } from "./push.ts";

function details(p: PushInfo): HTMLElement {
  const s = p.stats;
  const pairs: [string, Node | string][] = [
    ["State", h("span", { class: `pill ${pushState(p)}` }, pushState(p))],
    ["Topic", link(`#/topics/${enc(p.topic)}`, p.topic)],
    ["Endpoint", h("span", { class: "mono" }, p.url)],
    ["Filter", h("span", { class: "mono" }, p.filter)],
    ["Consumer group", link(`#/groups/${enc(p.name)}`, p.name)],
    ["Max concurrency", num(p.maxConcurrency)],
    ["Timeout", duration(p.timeoutMs)],
    ["Max reconsume times", num(p.maxReconsumeTimes)],
    ["Retry delays", p.retryDelaysMs.map(duration).join(", ")],
    ["Order", p.orderly ? "orderly (one per sharding key at a time)" : "concurrent"],
    ["Delivered", num(s.delivered)],
    ["Failed", num(s.failed)],
    ["In flight", num(s.inflight)],
    ["Lag", num(s.lag)],
    ["Dead letters", num(s.dlq)],
    ["Last error", s.lastError ? `${s.lastError} at ${time(s.lastErrorAt)}` : "none"],
  ];
  return h(
    "dl",
    { class: "kv", id: "push-details" },
    pairs.map(([k, v]) => [h("dt", null, k), h("dd", null, v)]),
  );
}

export function pushSubscriptionPage(view: HTMLElement, name: string): Refresh {
  const info = h("div", null, h("p", { class: "empty" }, "Loading…"));
  const out = h("p", { class: "result", id: "push-sub-result" });
  const dlq = deadLetters(name);
  const pauseBtn = button("Pause", "secondary", () => setPaused(name, true, out));
  const resumeBtn = button("Resume", "secondary", () => setPaused(name, false, out));
  add(
    view,
    h(
      "div",
      { class: "topbar" },
      h("h1", null, "Push subscription ", h("span", { class: "mono" }, name)),
      h("a", { href: "#/push" }, "← all push subscriptions"),
    ),
    card("Subscription", info, h("div", { class: "actions" }, pauseBtn, resumeBtn), out),
    card("Dead-letter queue", dlq.el, dlq.actions, dlq.out),
    card(
      null,
      h(
        "div",
        { class: "actions" },
        button("New signing secret", "secondary", () => {
          if (!confirm(`Make a new signing secret for ${name}? The old one signs for 24 h more.`))
            return;
          api<PushPutResult>("PUT", `/v1/push/${enc(name)}`, { rotateSecret: true }).then(
            (r) => show(out, true, `New signing secret (shown once): ${r.signingSecret}`),
            (e: unknown) => show(out, false, errText(e)),
          );
        }),
        button("Delete subscription", "danger", () => {
          if (!confirm(`Delete push subscription ${name}? Its group and offsets stay.`)) return;
          api("DELETE", `/v1/push/${enc(name)}`).then(
            () => {
              location.hash = "#/push";
              refreshNow();
            },
            (e: unknown) => alert(errText(e)),
          );
        }),
      ),
    ),
  );

  return async (alive) => {
    const [p, { messages }] = await Promise.all([
      api<PushInfo>("GET", `/v1/push/${enc(name)}`),
      api<MessageList>("GET", `/v1/groups/${enc(name)}/dlq/messages?limit=200`),
    ]);
    if (!alive()) return;
    fill(info, details(p));
    pauseBtn.hidden = p.paused;
    resumeBtn.hidden = !p.paused;
    dlq.render(messages);
  };
}
