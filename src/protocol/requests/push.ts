/**
 * Requests of the push-subscription calls (`PUT/GET/DELETE /v1/push/{name}`,
 * `GET /v1/push`): the PUT body, every field checked as the request arrives
 * and named when it fails (BAD_REQUEST), so nothing is stored for a bad one.
 * The topic's existence is checked by the registry, which stores the
 * subscription in the same step.
 */
import { badRequest } from "../errors.ts";
import { compileFilter } from "../filter.ts";
import { Limits } from "../limits.ts";
import { type PushInput, PushLimits } from "../push.ts";
import { outboundUrlAllowed } from "../signing.ts";
import { checkName, intField, isObject } from "./fields.ts";

const inputKeys = new Set([
  "topic",
  "url",
  "filter",
  "maxConcurrency",
  "timeoutMs",
  "maxReconsumeTimes",
  "retryDelaysMs",
  "orderly",
  "paused",
  "rotateSecret",
  // Echoed back by GET: a config read and PUT again is accepted.
  "name",
  "createdAt",
  "updatedAt",
  "stats",
]);

/**
 * Checks an endpoint URL: http(s), at most {@link PushLimits.maxUrlLength};
 * `http://` only to a loopback host, or anywhere when the broker runs
 * locally (`local`, `npm start`), since a deployed broker would send signed
 * bodies in clear text. No credentials in the URL (they would be logged and
 * shown in every listing).
 */
export function parsePushUrl(value: unknown, local: boolean): string {
  if (typeof value !== "string" || value.length > PushLimits.maxUrlLength) {
    throw badRequest(`url must be an http(s) URL of at most ${PushLimits.maxUrlLength} characters`);
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw badRequest("url must be an http(s) URL");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw badRequest("url must be an http(s) URL");
  }
  if (!outboundUrlAllowed(url, local)) {
    throw badRequest(
      "url must be https:// (http:// is accepted only for loopback hosts or a local broker)",
    );
  }
  if (url.username || url.password) {
    throw badRequest("url must not carry credentials (the signature authenticates the broker)");
  }
  url.hash = "";
  return url.toString();
}

/** Parses the body of `PUT /v1/push/{name}`. */
export function parsePushInput(body: unknown, opts: { local: boolean }): PushInput {
  if (!isObject(body)) throw badRequest('body must be {"topic", "url", ...}');
  for (const k of Object.keys(body)) if (!inputKeys.has(k)) throw badRequest(`unknown field ${k}`);
  const out: PushInput = {};
  if (body.topic !== undefined) {
    if (typeof body.topic !== "string") throw badRequest("topic must be a topic name");
    out.topic = checkName(body.topic, "topic");
  }
  if (body.url !== undefined) out.url = parsePushUrl(body.url, opts.local);
  if (body.filter !== undefined) {
    if (typeof body.filter !== "string" || body.filter.length > Limits.maxFilterBytes) {
      throw badRequest(`filter must be a string of at most ${Limits.maxFilterBytes} characters`);
    }
    // Compiled now so a bad expression is refused here, not at every delivery.
    compileFilter(body.filter);
    out.filter = body.filter.trim() === "" ? "*" : body.filter;
  }
  const concurrency = intField(
    body,
    "maxConcurrency",
    PushLimits.minConcurrency,
    PushLimits.maxConcurrency,
  );
  if (concurrency !== undefined) out.maxConcurrency = concurrency;
  const timeoutMs = intField(body, "timeoutMs", PushLimits.minTimeoutMs, PushLimits.maxTimeoutMs);
  if (timeoutMs !== undefined) out.timeoutMs = timeoutMs;
  const max = intField(body, "maxReconsumeTimes", 0, Limits.maxMaxReconsumeTimes);
  if (max !== undefined) out.maxReconsumeTimes = max;
  if (body.retryDelaysMs !== undefined) {
    const d = body.retryDelaysMs;
    if (
      !Array.isArray(d) ||
      d.length === 0 ||
      d.length > Limits.maxRetryDelays ||
      !d.every((x) => Number.isSafeInteger(x) && x >= 0 && x <= Limits.maxDelayMs)
    ) {
      throw badRequest(
        `retryDelaysMs must be 1..${Limits.maxRetryDelays} integers from 0 to ${Limits.maxDelayMs}`,
      );
    }
    out.retryDelaysMs = d as number[];
  }
  for (const key of ["orderly", "paused", "rotateSecret"] as const) {
    if (body[key] === undefined) continue;
    if (typeof body[key] !== "boolean") throw badRequest(`${key} must be a boolean`);
    if (key === "rotateSecret") {
      if (body[key]) out.rotateSecret = true;
    } else out[key] = body[key];
  }
  return out;
}
