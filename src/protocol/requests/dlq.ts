/** A group's dead-letter queue: resending what it holds. */
import { badRequest } from "../errors.ts";
import { objectBody } from "./fields.ts";

/** `null`: resend every dead letter of the group. */
export interface DlqResendRequest {
  msgIds: string[] | null;
}

/** Reads `{"msgIds": [...]}` of a resend (optional; absent or empty: all). */
export function parseDlqResend(body: unknown): DlqResendRequest {
  const ids = objectBody(body).msgIds;
  if (ids !== undefined && (!Array.isArray(ids) || !ids.every((x) => typeof x === "string"))) {
    throw badRequest("msgIds must be an array of strings");
  }
  return { msgIds: ids === undefined || ids.length === 0 ? null : (ids as string[]) };
}
