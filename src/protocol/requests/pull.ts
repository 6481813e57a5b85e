/** `GET /v1/topics/{topic}/queues/{q}/messages`: pull by offset or by a group's committed offset. */
import { badRequest } from "../errors.ts";
import { type MessageFilter, compileFilter } from "../filter.ts";
import { Limits } from "../limits.ts";
import { type QueryInput, checkName, intParam, queryValue } from "./fields.ts";

/** A pull's query, checked; the filter is compiled here, once per call. */
export interface PullRequest {
  /** Where to read from; absent: the group's committed offset. */
  offset?: number;
  group?: string;
  max: number;
  waitMs: number;
  filter: MessageFilter;
}

/** The group a pull names, if any: checked first, since the token is checked against it. */
export function parsePullGroup(query: QueryInput): string | undefined {
  const group = queryValue(query, "group");
  return group === undefined ? undefined : checkName(group, "group");
}

/** Reads a pull's query string. */
export function parsePull(query: QueryInput): PullRequest {
  const group = parsePullGroup(query);
  const offset = intParam(queryValue(query, "offset"), "offset", 0, Number.MAX_SAFE_INTEGER);
  const max = intParam(
    queryValue(query, "max"),
    "max",
    Limits.minMax,
    Limits.maxMax,
    Limits.defaultMax,
  );
  const waitMs = intParam(
    queryValue(query, "waitMs"),
    "waitMs",
    0,
    Limits.maxWaitMs,
    Limits.defaultWaitMs,
  );
  const text = queryValue(query, "filter");
  if (text !== undefined && text.length > Limits.maxFilterBytes)
    throw badRequest("filter is too long");
  const filter = compileFilter(text);
  if (offset === undefined && group === undefined) throw badRequest("offset or group is required");
  return {
    ...(offset !== undefined && { offset }),
    ...(group !== undefined && { group }),
    max,
    waitMs,
    filter,
  };
}
