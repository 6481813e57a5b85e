/**
 * `#/transactions`: open half messages of every topic, with commit and
 * rollback, and the producer groups' check-back settings.
 */
import { api, enc } from "../api.ts";
import type {
  OpenTransaction,
  ProducerGroupConfig,
  ProducerGroupList,
  ProducerGroupSaved,
  TopicList,
  TransactionEnd,
  TransactionList,
} from "../api-types.ts";
import { add, fill, h } from "../dom.ts";
import { duration, errText, num, parseDuration, time } from "../format.ts";
import { type Refresh, refreshNow } from "../live.ts";
import { act, button, card, field, link, rowsOf, show, table } from "../widgets.ts";

type TopicTransaction = OpenTransaction & { topic: string };

function producerGroupForm(): { form: HTMLFormElement; out: HTMLElement } {
  const out = h("p", { class: "result" });
  const name = h("input", { id: "pg-name", required: true, pattern: "[A-Za-z0-9_\\-]{1,127}" });
  const url = h("input", {
    id: "pg-url",
    type: "url",
    placeholder: "https://app.example.com/edgemq-check",
  });
  const after = h("input", { id: "pg-after", value: "6s" });
  const interval = h("input", { id: "pg-interval", value: "60s" });
  const max = h("input", { id: "pg-max", type: "number", min: 1, value: 15 });
  const rotate = h("input", { id: "pg-rotate", type: "checkbox" });
  const form = h(
    "form",
    { id: "pg-form" },
    field("Producer group", name),
    field("Check URL", url),
    field("Check after", after),
    field("Check every", interval),
    field("Max checks", max),
    field("Rotate signing secret", rotate),
    h("button", { type: "submit" }, "Save producer group"),
  );
  act(form, out, async () => {
    const pg = name.value.trim();
    const checkUrl = url.value.trim();
    const body: Omit<ProducerGroupConfig, "producerGroup"> & { rotateSecret: boolean } = {
      checkUrl: checkUrl || null,
      checkAfterMs: parseDuration(after.value),
      checkIntervalMs: parseDuration(interval.value),
      maxChecks: Number(max.value),
      rotateSecret: rotate.checked,
    };
    const saved = await api<ProducerGroupSaved>("PUT", `/v1/producer-groups/${enc(pg)}`, body);
    // The check-back signing secret is answered only when made (a new group, or rotated): shown once.
    return saved.signingSecret === undefined
      ? `Saved producer group ${pg}.`
      : `Saved producer group ${pg}. Signing secret for its check handler (shown once): ${saved.signingSecret}`;
  });
  return { form, out };
}

export function transactionsPage(view: HTMLElement): Refresh {
  const txEl = h("div", { id: "tx-table" }, h("p", { class: "empty" }, "Loading…"));
  const txOut = h("p", { class: "result" });
  const pgEl = h("div", { id: "pg-table" });
  const pg = producerGroupForm();

  function end(tx: TopicTransaction, how: "commit" | "rollback"): void {
    if (!confirm(`${how === "commit" ? "Commit" : "Roll back"} transaction ${tx.txId}?`)) return;
    api<TransactionEnd>("POST", `/v1/transactions/${enc(tx.txId)}/${how}`).then(
      (r) => {
        show(txOut, true, `${tx.msgId}: ${r.status}.`);
        refreshNow();
      },
      (e: unknown) => show(txOut, false, errText(e)),
    );
  }

  add(
    view,
    h("div", { class: "topbar" }, h("h1", null, "Open transactions")),
    card("Half messages waiting for commit or rollback", txEl, txOut),
    card("Producer groups (check-back)", pgEl, pg.form, pg.out),
  );

  return async (alive) => {
    const [{ topics }, { producerGroups }] = await Promise.all([
      api<TopicList>("GET", "/v1/topics"),
      api<ProducerGroupList>("GET", "/v1/producer-groups"),
    ]);
    // A topic whose shards do not answer lists no transactions rather than failing the page.
    const lists = await Promise.all(
      topics.map((t) =>
        api<TransactionList>("GET", `/v1/topics/${enc(t.topic)}/transactions`).then(
          (x) => x.transactions.map((tx): TopicTransaction => ({ topic: t.topic, ...tx })),
          (): TopicTransaction[] => [],
        ),
      ),
    );
    if (!alive()) return;
    const txs = lists.flat().sort((a, b) => a.createdAt - b.createdAt);
    fill(
      txEl,
      table<TopicTransaction>(
        [
          { label: "Topic", get: (t) => link(`#/topics/${enc(t.topic)}`, t.topic) },
          { label: "Msg ID", cls: "mono", get: (t) => t.msgId },
          { label: "Producer group", get: (t) => t.producerGroup },
          { label: "Queue", num: true, get: (t) => t.queue },
          { label: "Age", num: true, get: (t) => duration(t.ageMs) },
          { label: "Checks", num: true, get: (t) => num(t.checks) },
          { label: "Next check", get: (t) => time(t.nextCheckAt) },
          {
            label: "",
            get: (t) =>
              h(
                "div",
                { class: "actions" },
                button("Commit", "secondary", () => end(t, "commit")),
                button("Roll back", "danger", () => end(t, "rollback")),
              ),
          },
        ],
        rowsOf(txs, null, (t) => t.txId),
        "No open transactions.",
      ),
    );
    fill(
      pgEl,
      table<ProducerGroupConfig>(
        [
          { label: "Producer group", get: (p) => p.producerGroup },
          {
            label: "Check URL",
            cls: "mono",
            get: (p) => p.checkUrl || "none (rolled back after checks)",
          },
          { label: "After", num: true, get: (p) => duration(p.checkAfterMs) },
          { label: "Every", num: true, get: (p) => duration(p.checkIntervalMs) },
          { label: "Max checks", num: true, get: (p) => num(p.maxChecks) },
        ],
        rowsOf(producerGroups || []),
        "No producer groups configured.",
      ),
    );
  };
}
