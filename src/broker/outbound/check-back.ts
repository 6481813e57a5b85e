/**
 * Transaction check-back: asks a producer group whether an open half message
 * should be committed or rolled back. Runs outside the shard's storage
 * critical path (plain fetch), with a timeout, so a slow check URL never
 * stalls sends.
 */
import type { DueCheck } from "../store/transactions.ts";
import { CHECK_TIMEOUT_MS } from "../timers/timing.ts";

export type CheckVerdict = "commit" | "rollback" | "unknown" | "exhausted";

/** Hex HMAC-SHA256 of `body` with `secret`: the `X-Edgemq-Signature` header. */
export async function signBody(body: string, secret: string): Promise<string> {
  const enc = new TextEncoder();
  const key = await crypto.subtle.importKey(
    "raw",
    enc.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, enc.encode(body)));
  return Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * What to do with a half message after its `checks`-th check answered
 * `answer`: the producer's commit or rollback stands; an unknown answer (or
 * an error, a timeout, garbage) defers it, unless that was the last check the
 * producer group allows, which makes it `exhausted` (rolled back at once
 * rather than one more interval later).
 */
export function settleVerdict(
  answer: "commit" | "rollback" | "unknown",
  checks: number,
  maxChecks: number,
): CheckVerdict {
  if (answer !== "unknown") return answer;
  return checks >= maxChecks ? "exhausted" : "unknown";
}

/**
 * Runs one check. `due.checks` already counts this one; past the producer
 * group's `maxChecks` the answer is `exhausted` (the caller rolls back).
 * Errors, timeouts and garbage answers are `unknown`: the check is deferred.
 */
export async function runCheck(
  due: DueCheck,
  topic: string,
  txId: string,
  secret: string | undefined,
): Promise<CheckVerdict> {
  const { message, check } = due;
  if (due.checks > check.maxChecks) return "exhausted";
  if (!check.checkUrl) return "unknown";
  const body = JSON.stringify({
    txId,
    msgId: due.msgId,
    topic,
    producerGroup: due.producerGroup,
    message: {
      msgId: message.msgId,
      body: message.body,
      encoding: message.encoding,
      ...(message.tag !== null && { tag: message.tag }),
      ...(message.keys.length && { keys: message.keys }),
      ...(message.properties && { properties: message.properties }),
      ...(message.shardingKey !== null && { shardingKey: message.shardingKey }),
    },
    checkTimes: due.checks,
  });
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (secret) headers["x-edgemq-signature"] = await signBody(body, secret);
  try {
    const res = await fetch(check.checkUrl, {
      method: "POST",
      headers,
      body,
      signal: AbortSignal.timeout(CHECK_TIMEOUT_MS),
    });
    if (!res.ok) {
      await res.body?.cancel();
      return settleVerdict("unknown", due.checks, check.maxChecks);
    }
    const answer = (await res.json()) as { status?: unknown } | null;
    const status = answer?.status;
    return settleVerdict(
      status === "commit" || status === "rollback" ? status : "unknown",
      due.checks,
      check.maxChecks,
    );
  } catch {
    return settleVerdict("unknown", due.checks, check.maxChecks);
  }
}
