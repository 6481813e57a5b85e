/** A group's offsets: commit one queue's, or reset every queue's. */
import { badRequest } from "../errors.ts";
import { intField, objectBody } from "./fields.ts";

/** Reads `{"offset": N}` (N: the next offset to read) of a commit. */
export function parseCommitOffset(body: unknown): { offset: number } {
  const offset = intField(objectBody(body), "offset", 0, Number.MAX_SAFE_INTEGER);
  if (offset === undefined) throw badRequest("offset is required");
  return { offset };
}

/** Where a reset moves a group: the first message stored at or after a time, or an end of the log. */
export type ResetTarget = { timestamp: number } | { to: "earliest" | "latest" };

/** Reads `{"timestamp": ms}` or `{"to": "earliest" | "latest"}` of a reset: exactly one of them. */
export function parseResetOffsets(body: unknown): ResetTarget {
  const b = objectBody(body);
  if (b.timestamp !== undefined && b.to === undefined) {
    return { timestamp: intField(b, "timestamp", 0, 8.64e15)! };
  }
  if (b.to !== undefined && b.timestamp === undefined) {
    if (b.to !== "earliest" && b.to !== "latest") {
      throw badRequest('to must be "earliest" or "latest"');
    }
    return { to: b.to };
  }
  throw badRequest("give exactly one of timestamp or to");
}
