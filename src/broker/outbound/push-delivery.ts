/**
 * One push delivery: POSTs a message to a subscription's endpoint, signed
 * with the subscription's own secrets (src/protocol/signing.ts, the scheme
 * shared with check-backs), and reads the answer as the contract does: a 2xx
 * acks; anything else, no answer within `timeoutMs`, or a network error is a
 * failure, with the endpoint's `Retry-After` on a 429 or 503. Never throws:
 * the object settles every claim with what this answers.
 *
 * Runs outside the shard's transactions (the object starts it with
 * `ctx.waitUntil`), so a slow endpoint holds nothing but its own fetch.
 */
import { outboundUrlAllowed, signatureHeaders } from "../../protocol/signing.ts";
import type { PushClaim, PushOutcome } from "../store/push.ts";
import { retryAfterMs } from "../timers/push-timing.ts";

/** The body a push endpoint receives: the message as delivered (no receipt: the answer acks it). */
export function deliveryBody(claim: PushClaim): string {
  const { receipt: _receipt, ...message } = claim.message;
  return JSON.stringify(message);
}

/**
 * Delivers one claim. `secrets` are the subscription's signing secrets now
 * (current first); with none, nothing is sent (an unsigned request never
 * goes out) and the delivery fails. `local` is whether the broker runs on
 * this machine (`http://` anywhere is then allowed).
 */
export async function deliver(
  claim: PushClaim,
  secrets: readonly string[],
  local: boolean,
  clock: () => number = Date.now,
): Promise<PushOutcome> {
  const started = clock();
  const failed = (error: string, retryAfter: number | null = null): PushOutcome => ({
    ok: false,
    error,
    retryAfterMs: retryAfter,
    latencyMs: Math.max(0, clock() - started),
  });
  let url: URL;
  try {
    url = new URL(claim.url);
  } catch {
    return failed("the subscription's url is not a URL");
  }
  // Checked again here, not only when the URL was set: data moved from a
  // local broker to a deployed one must not send signed bodies in clear.
  if (!outboundUrlAllowed(url, local))
    return failed("url is http:// to a host that is not loopback");
  if (secrets.length === 0) return failed("the subscription has no signing secret (PUT it again)");
  const body = deliveryBody(claim);
  const m = claim.message;
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "user-agent": "edgemq-push/1",
    "x-edgemq-msg-id": m.msgId,
    "x-edgemq-subscription": claim.name,
    "x-edgemq-reconsume-times": String(m.reconsumeTimes),
    ...(await signatureHeaders(body, secrets, clock())),
  };
  if (m.traceparent !== undefined) headers.traceparent = m.traceparent;
  if (m.tracestate !== undefined) headers.tracestate = m.tracestate;
  try {
    const res = await fetch(url, {
      method: "POST",
      headers,
      body,
      // A redirect is an answer (a failure), never followed: the signed body goes to the configured URL only.
      redirect: "manual",
      signal: AbortSignal.timeout(claim.timeoutMs),
    });
    // The answer's body means nothing to the broker; not reading it frees the connection.
    await res.body?.cancel().catch(() => {});
    if (res.status >= 200 && res.status < 300) {
      return {
        ok: true,
        error: null,
        retryAfterMs: null,
        latencyMs: Math.max(0, clock() - started),
      };
    }
    const after =
      res.status === 429 || res.status === 503
        ? retryAfterMs(res.headers.get("retry-after"), clock())
        : null;
    return failed(`HTTP ${res.status}`, after);
  } catch (e) {
    const name = (e as { name?: string } | null)?.name;
    if (name === "TimeoutError" || name === "AbortError") {
      return failed(`timeout: no answer within ${claim.timeoutMs} ms`);
    }
    return failed(`network error: ${e instanceof Error ? e.message : String(e)}`.slice(0, 300));
  }
}
