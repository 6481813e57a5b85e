/**
 * The receiving end of a push subscription (api.md, "Push subscriptions"):
 * the broker POSTs each message to the subscription's URL, signed with its
 * `signingSecret`; {@link createPushHandler} verifies that signature (the
 * same verification as the check-back handler's, see signed-request.ts) and
 * hands the message to your code. A 2xx answer acks it; anything else makes
 * the broker retry it later with the subscription's delays.
 *
 * ```ts
 * // A Worker (or Deno.serve, Bun.serve, a Hono route: `(c) => onPush(c.req.raw)`)
 * const onPush = createPushHandler({
 *   signingSecret: env.PUSH_SECRET,
 *   handler: async (m) => { await bill(JSON.parse(m.body)); },
 * });
 * export default { fetch: onPush };
 * ```
 */
import type { Message } from "../src/protocol/types.ts";
import { jsonResponse, signatureVerifier } from "./signed-request.ts";

/** A message as a push endpoint receives it (the message as delivered, without a receipt). */
export type PushMessage = Omit<Message, "receipt">;

/** Options of {@link createPushHandler}. */
export interface PushHandlerOptions {
  /**
   * The subscription's `signingSecret` (from `PUT /v1/push/{name}`). While you
   * switch to a rotated one, give both: a request signed with either is accepted.
   */
  signingSecret: string | readonly string[];
  /**
   * Handles one message. Return (or resolve) to ack it; throw to have it
   * retried. Return a `Response` to answer yourself: a 2xx acks, anything else
   * retries (a 429 or 503 with `Retry-After` puts the retry off at least that long).
   */
  handler: (message: PushMessage, request: Request) => void | Response | Promise<void | Response>;
  /** Largest accepted distance between the request's timestamp and this clock, in ms. Default 5 minutes. */
  toleranceMs?: number;
  /** This receiver's clock (for tests). Default `Date.now`. */
  now?: () => number;
  /** Called with what `handler` threw (the answer is then a 500 and the broker retries). */
  onError?: (error: unknown, message: PushMessage) => void;
}

function isMessage(v: unknown): v is PushMessage {
  if (typeof v !== "object" || v === null) return false;
  const m = v as Record<string, unknown>;
  return (
    typeof m.msgId === "string" &&
    typeof m.topic === "string" &&
    typeof m.body === "string" &&
    typeof m.offset === "number" &&
    typeof m.reconsumeTimes === "number"
  );
}

/**
 * Makes a `(Request) => Promise<Response>` for a push endpoint, usable from a
 * Worker, a Hono app or Node (with a Request adapter). It verifies
 * `X-Edgemq-Timestamp` and `X-Edgemq-Signature` against the secret(s) and
 * refuses a timestamp more than 5 minutes from this clock, so a captured
 * delivery cannot be replayed later (401, and `handler` is not called); a
 * body that is not a message is 400. Then it calls `handler`: 200 when it
 * returns, 500 when it throws, or the `Response` it returns.
 *
 * Deliveries are at least once: a message may come again (a lost answer, a
 * lapsed claim), with the same `msgId` (also in `X-Edgemq-Msg-Id`).
 */
export function createPushHandler(
  options: PushHandlerOptions,
): (request: Request) => Promise<Response> {
  const verify = signatureVerifier({
    secret: options.signingSecret,
    ...(options.toleranceMs !== undefined && { toleranceMs: options.toleranceMs }),
    ...(options.now !== undefined && { now: options.now }),
  });
  return async (request: Request): Promise<Response> => {
    const signed = await verify(request);
    if (!signed.ok) return signed.response;
    let message: unknown;
    try {
      message = JSON.parse(signed.text);
    } catch {
      message = undefined;
    }
    if (!isMessage(message)) {
      return jsonResponse(400, {
        error: { code: "BAD_REQUEST", message: "body is not a pushed message" },
      });
    }
    try {
      const answer = await options.handler(message, request);
      if (answer instanceof Response) return answer;
      return jsonResponse(200, { ok: true });
    } catch (e) {
      options.onError?.(e, message);
      return jsonResponse(500, {
        error: { code: "INTERNAL", message: "the handler failed; the broker retries later" },
      });
    }
  };
}
