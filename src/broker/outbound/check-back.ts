/**
 * Transaction check-back: asks a producer group whether an open half message
 * should be committed or rolled back. Runs outside the shard's storage
 * critical path (plain fetch), with a timeout, so a slow check URL never
 * stalls sends.
 *
 * Each check is signed with the producer group's own secrets (see
 * src/protocol/signing.ts), read from the registry when the check runs, so a
 * rotation applies to transactions that were already open. Never with
 * TOKEN_SECRET: a check URL belongs to someone else.
 */
import type { Env } from "../../env.ts";
import { outboundUrlAllowed, signatureHeaders } from "../../protocol/signing.ts";
import type { DueCheck } from "../store/transactions.ts";
import { CHECK_TIMEOUT_MS } from "../timers/timing.ts";

export type CheckVerdict = "commit" | "rollback" | "unknown" | "exhausted";

/** What a check needs from the shard's environment: the registry (for secrets) and whether it runs locally. */
export type CheckEnv = Pick<Env, "REGISTRY" | "EDGEMQ_LOCAL">;

/** The producer group's signing secrets now (current first); empty when it has none. */
async function secretsOf(env: CheckEnv, producerGroup: string): Promise<string[]> {
  const registry = env.REGISTRY.get(env.REGISTRY.idFromName("registry"));
  return registry.producerGroupSecrets(producerGroup);
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
  env: CheckEnv,
): Promise<CheckVerdict> {
  const { message, check } = due;
  if (due.checks > check.maxChecks) return "exhausted";
  if (!check.checkUrl) return "unknown";
  // Checked again here, not only when the URL was set: a URL stored before this
  // rule (or by a local broker's data moved to a deployed one) must not go out in clear.
  if (!outboundUrlAllowed(new URL(check.checkUrl), env.EDGEMQ_LOCAL === "1")) {
    console.warn(`check-back of ${txId} not sent: ${check.checkUrl} is http:// and not loopback`);
    return settleVerdict("unknown", due.checks, check.maxChecks);
  }
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
  try {
    const secrets = await secretsOf(env, due.producerGroup);
    if (secrets.length === 0) {
      // A producer group made before secrets existed: its first PUT makes one.
      console.warn(
        `check-back of ${txId} not sent: producer group ${due.producerGroup} has no signing secret (PUT it to get one)`,
      );
      return settleVerdict("unknown", due.checks, check.maxChecks);
    }
    const headers = {
      "content-type": "application/json",
      ...(await signatureHeaders(body, secrets, Date.now())),
    };
    const res = await fetch(check.checkUrl, {
      method: "POST",
      headers,
      body,
      // A redirect is an answer (unknown), never followed: the signed body goes to the configured URL only.
      redirect: "manual",
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
