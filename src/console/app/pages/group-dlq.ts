/** The group page's dead-letter queue: its messages, with resend of the selected ones or all. */
import { api, enc } from "../api.ts";
import type { DeadLetterResend, Message } from "../api-types.ts";
import { fill, h } from "../dom.ts";
import { errText, preview, time } from "../format.ts";
import { refreshNow } from "../live.ts";
import { button, rowsOf, show, table } from "../widgets.ts";

/** The table, its actions and result line; `render` redraws it from the current dead letters. */
export function deadLetters(group: string): {
  el: HTMLElement;
  actions: HTMLElement;
  out: HTMLElement;
  render: (messages: readonly Message[]) => void;
} {
  const el = h("div", { id: "dlq" });
  const out = h("p", { class: "result", id: "dlq-result" });
  // Survives refreshes: a ticked box stays ticked while its message is still there.
  const selected = new Set<string>();

  /** Resends these message ids, or every dead letter of the group (null). */
  function resend(ids: string[] | null): void {
    api<DeadLetterResend>(
      "POST",
      `/v1/groups/${enc(group)}/dlq/resend`,
      ids ? { msgIds: ids } : {},
    ).then(
      (r) => {
        for (const id of r.resent) selected.delete(id);
        show(out, true, `Resent ${r.resent.length} message(s) to ${group}.`);
        refreshNow();
      },
      (e: unknown) => show(out, false, errText(e)),
    );
  }

  const actions = h(
    "div",
    { class: "actions" },
    button("Resend selected", "secondary", () => {
      if (!selected.size) {
        show(out, false, "Select messages first.");
        return;
      }
      resend(Array.from(selected));
    }),
    button("Resend all", "secondary", () => {
      if (confirm(`Resend every dead letter of ${group}?`)) resend(null);
    }),
  );

  function render(messages: readonly Message[]): void {
    const ids = new Set(messages.map((m) => m.msgId));
    for (const id of selected) if (!ids.has(id)) selected.delete(id);
    fill(
      el,
      table<Message>(
        [
          {
            label: "",
            get: (m) => {
              const box = h("input", {
                type: "checkbox",
                checked: selected.has(m.msgId),
                "aria-label": `select ${m.msgId}`,
                onchange: () => {
                  if (box.checked) selected.add(m.msgId);
                  else selected.delete(m.msgId);
                },
              });
              return box;
            },
          },
          { label: "Msg ID", cls: "mono", get: (m) => m.msgId },
          { label: "Topic", get: (m) => m.topic },
          { label: "Queue", num: true, get: (m) => m.queue },
          { label: "Offset", num: true, get: (m) => m.offset },
          { label: "Reconsumed", num: true, get: (m) => m.reconsumeTimes },
          { label: "Stored", get: (m) => time(m.storedAt) },
          { label: "Body", cls: "body", get: preview },
        ],
        rowsOf(messages, null, (m) => m.msgId),
        "The dead-letter queue is empty.",
      ),
    );
  }

  return { el, actions, out, render };
}
