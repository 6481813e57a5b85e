/**
 * The page of the browser outbox test: a Producer with the IndexedDB outbox,
 * configured from the URL's hash (`#endpoint=…&token=…`), driven by the test
 * through `window.outboxTest`. It records every outbox event so the test can
 * see what happened across reloads and crashes.
 */
import { type EdgemqEvent, Producer, type ProducerSendResult } from "../../../client/index.ts";

/** One outbox event, as plain data. */
export interface RecordedEvent {
  type: string;
  msgId?: string;
  status?: string;
  kept?: boolean;
  code?: string;
}

/** What the test calls in the page. */
export interface OutboxTestApi {
  send(topic: string, bodies: string[], shardingKey?: string): Promise<ProducerSendResult[]>;
  sendBatch(topic: string, bodies: string[]): Promise<ProducerSendResult[]>;
  pending(): Promise<number>;
  events: RecordedEvent[];
}

declare global {
  interface Window {
    outboxTest?: OutboxTestApi;
  }
}

/** The fields of the outbox's event details that the test looks at. */
interface EventDetail {
  msgId?: string;
  result?: { status?: string };
  kept?: boolean;
  error?: { code?: string };
}

const params = new URLSearchParams(location.hash.slice(1));
const producer = new Producer({
  endpoint: params.get("endpoint") ?? "",
  token: params.get("token") ?? "",
  // Sessions by default, as an application gets them; `sessions=0` speaks HTTP.
  sessions: params.get("sessions") !== "0",
  // Short backoff: a test waits for the drain after coming back online.
  outbox: { backoff: { baseMs: 100, maxMs: 1000 } },
});
const outbox = producer.outbox!;
const events: RecordedEvent[] = [];
for (const type of ["queued", "sent", "error", "drained"]) {
  outbox.addEventListener(type, (e) => {
    const d = (e as EdgemqEvent<EventDetail>).detail;
    const rec: RecordedEvent = { type };
    if (d.msgId !== undefined) rec.msgId = d.msgId;
    if (d.result?.status !== undefined) rec.status = d.result.status;
    if (d.kept !== undefined) rec.kept = d.kept;
    if (d.error?.code !== undefined) rec.code = d.error.code;
    events.push(rec);
  });
}

window.outboxTest = {
  send: (topic, bodies, shardingKey) =>
    Promise.all(
      bodies.map((body) =>
        producer.send(shardingKey === undefined ? { topic, body } : { topic, body, shardingKey }),
      ),
    ),
  sendBatch: (topic, bodies) => producer.sendBatch(bodies.map((body) => ({ topic, body }))),
  pending: () => outbox.pending(),
  events,
};
