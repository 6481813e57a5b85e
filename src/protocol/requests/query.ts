/** Query strings of the read-only admin calls: message queries and list limits. */
import { badRequest } from "../errors.ts";
import { Limits } from "../limits.ts";
import { type QueryInput, intParam, queryValue } from "./fields.ts";

/** `?limit=N` of a listing (messages, dead letters, open transactions). */
export function parseLimit(query: QueryInput): { limit: number } {
  return {
    limit: intParam(
      queryValue(query, "limit"),
      "limit",
      1,
      Limits.maxQueryLimit,
      Limits.defaultQueryLimit,
    ),
  };
}

/** A message query: by key, or by store time in `[from, to)`. */
export interface MessageQuery {
  by: { key: string } | { from: number; to: number };
  limit: number;
}

/** Reads `?key=K` or `?from=ms&to=ms`, with `limit`. */
export function parseMessageQuery(query: QueryInput): MessageQuery {
  const { limit } = parseLimit(query);
  const key = queryValue(query, "key");
  if (key !== undefined) {
    if (key.length === 0 || key.length > Limits.maxKeyBytes) {
      throw badRequest("key must be 1..256 characters");
    }
    return { by: { key }, limit };
  }
  const from = intParam(queryValue(query, "from"), "from", 0, 8.64e15);
  const to = intParam(queryValue(query, "to"), "to", 0, 8.64e15);
  if (from === undefined || to === undefined) throw badRequest("give key, or from and to");
  if (to < from) throw badRequest("to must not be before from");
  return { by: { from, to }, limit };
}
