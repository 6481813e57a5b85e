/** `POST /v1/topics/{topic}/transactions`: a half message and its producer group. */
import { EdgemqError, badRequest } from "../errors.ts";
import { Limits } from "../limits.ts";
import { isObject } from "./fields.ts";
import { type NormalizedMessage, parseMessage } from "./message.ts";

/** A prepare, its message checked but its size (the topic's limit is checked once it is known). */
export interface PrepareRequest {
  message: NormalizedMessage;
  producerGroup: string;
}

/** Reads `{"message": m, "producerGroup": "pg"}`; a transactional message cannot be scheduled. */
export function parsePrepare(
  body: unknown,
  now: number,
  newId: () => string,
  maxBytes?: number,
): PrepareRequest {
  if (!isObject(body)) {
    throw badRequest('body must be {"message": {...}, "producerGroup": "..."}');
  }
  const { message, producerGroup } = body;
  if (typeof producerGroup !== "string" || !Limits.namePattern.test(producerGroup)) {
    throw new EdgemqError("INVALID_NAME", `producerGroup must match ${Limits.namePattern.source}`);
  }
  const m = parseMessage(message, { now, newId, ...(maxBytes !== undefined && { maxBytes }) });
  if (m.deliverAt !== null) throw badRequest("a transactional message cannot be scheduled");
  return { message: m, producerGroup };
}
