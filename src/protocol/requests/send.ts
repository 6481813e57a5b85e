/** `POST /v1/topics/{topic}/messages`: the batch and the pinned queue. */
import { EdgemqError, badRequest } from "../errors.ts";
import { Limits } from "../limits.ts";
import { type QueryInput, intParam, isObject, queryValue } from "./fields.ts";
import type { TraceContext } from "../trace.ts";
import { type NormalizedMessage, parseMessage } from "./message.ts";

/** A send, every message checked but its size (the topic's own limit is checked once it is known). */
export interface SendRequest {
  messages: NormalizedMessage[];
}

/** The `?queue=N` of a send: pinned, else routed by sharding key or msgId. */
export function parseSendQuery(query: QueryInput): { queue: number | undefined } {
  return { queue: intParam(queryValue(query, "queue"), "queue", 0, Limits.maxQueues - 1) };
}

/**
 * Reads the `{"messages": [...]}` body of a send. One bad message refuses
 * the whole batch (all or nothing), named by its index. `trace` (from the
 * request's `traceparent` / `tracestate` headers, see parseTraceContext in trace.ts)
 * applies to every message that brings no traceparent of its own.
 */
export function parseSend(
  body: unknown,
  now: number,
  newId: () => string,
  trace?: TraceContext,
): SendRequest {
  if (!isObject(body) || !Array.isArray(body.messages)) {
    throw badRequest('body must be {"messages": [...]}');
  }
  const list = body.messages;
  if (list.length === 0) throw badRequest("messages must not be empty");
  if (list.length > Limits.maxBatchMessages) {
    throw new EdgemqError(
      "BATCH_TOO_LARGE",
      `at most ${Limits.maxBatchMessages} messages per request; got ${list.length}`,
    );
  }
  const messages = list.map((m, index) => parseMessage(m, { now, newId, index }));
  if (trace?.traceparent) {
    for (const m of messages) {
      if (m.traceparent !== undefined) continue;
      m.traceparent = trace.traceparent;
      if (trace.tracestate !== null) m.tracestate = trace.tracestate;
    }
  }
  return { messages };
}
