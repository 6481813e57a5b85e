/** `#/tokens`: minting a scoped token (shown once). */
import { api } from "../api.ts";
import type { MintedToken } from "../api-types.ts";
import { add, fill, h } from "../dom.ts";
import { duration, list, parseDuration } from "../format.ts";
import { act, card, field } from "../widgets.ts";

/** A static page: nothing to refresh. */
export function tokensPage(view: HTMLElement): null {
  const out = h("p", { class: "result" });
  const tokenEl = h("div");
  const sub = h("input", { id: "token-sub", required: true, placeholder: "web-app" });
  const publish = h("input", { id: "token-publish", placeholder: "orders*, audit" });
  const subscribe = h("input", { id: "token-subscribe", placeholder: "orders*" });
  const groups = h("input", { id: "token-groups", placeholder: "web-*" });
  const ttl = h("input", { id: "token-ttl", value: "1h" });
  const form = h(
    "form",
    { id: "token-form" },
    field("Subject (who it is for)", sub),
    field("Publish to (topic patterns)", publish),
    field("Subscribe to (topic patterns)", subscribe),
    field("As groups (patterns)", groups),
    field("Lifetime", ttl),
    h("button", { type: "submit" }, "Mint token"),
  );
  act(form, out, async () => {
    const body = {
      sub: sub.value.trim(),
      publish: list(publish.value),
      subscribe: list(subscribe.value),
      groups: list(groups.value),
      ttlSeconds: Math.max(1, Math.round(parseDuration(ttl.value) / 1000)),
    };
    const r = await api<MintedToken>("POST", "/v1/tokens", body);
    fill(tokenEl, h("textarea", { id: "token-value", readOnly: true, rows: 4, value: r.token }));
    return `Minted a token for ${body.sub}, valid ${duration(body.ttlSeconds * 1000)}. It is shown once.`;
  });
  add(
    view,
    h("div", { class: "topbar" }, h("h1", null, "Tokens")),
    card(
      "Mint a scoped token",
      h(
        "p",
        { class: "muted" },
        "Patterns may end with *. Publish covers sends and transactions; subscribe covers pull, receive, ack and offsets for the listed groups.",
      ),
      form,
      out,
      tokenEl,
    ),
  );
  return null;
}
