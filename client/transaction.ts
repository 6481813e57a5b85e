/**
 * Transactional messages, RocketMQ style: a half message is stored invisible,
 * the local transaction runs, and its outcome commits or rolls the message
 * back. If the producer dies in between, the broker asks the producer
 * group's check URL later; {@link createCheckHandler} answers that call.
 */
import { EdgemqError } from "../src/protocol/errors.ts";
import type { MessageInput } from "../src/protocol/types.ts";
import { seg } from "./message.ts";
import { requestWithRetry, type RetryOptions } from "./retry.ts";
import { jsonResponse, type SignatureOptions, signatureVerifier } from "./signed-request.ts";
import type { Transport } from "./transport.ts";

/** A local transaction's outcome, as RocketMQ's `TransactionResolution`. */
export type TransactionResolution = "commit" | "rollback" | "unknown";

/** What the local transaction is told about the half message. */
export interface HalfMessage {
  txId: string;
  msgId: string;
  topic: string;
  message: MessageInput;
}

/** The end of {@link Producer.sendInTransaction}. */
export interface TransactionResult {
  txId: string;
  msgId: string;
  /** `unknown`: left open for the broker's check-back to decide. */
  status: "committed" | "rolledBack" | "unknown";
}

/**
 * The local transaction. Return (or resolve to) `commit`, `rollback` or
 * `unknown`; `undefined` counts as `commit`.
 */
export type LocalTransaction = (
  half: HalfMessage,
) => TransactionResolution | void | Promise<TransactionResolution | void>;

/**
 * Runs one transactional send. A throw from `executeLocal` rolls back (the
 * local work failed) and is rethrown. Ending the transaction is retried,
 * since repeating the same end is harmless; if it still fails, the broker's
 * check-back settles it and the error (with `txId` in its details) is thrown.
 *
 * Creating the half message is not retried after a network failure: unlike
 * a send, it is not deduplicated, and a second half message would be checked
 * back on its own.
 */
export async function runTransaction(
  transport: Transport,
  topic: string,
  message: MessageInput,
  producerGroup: string,
  executeLocal: LocalTransaction,
  retry: RetryOptions,
): Promise<TransactionResult> {
  const started = (await requestWithRetry(
    transport,
    "POST",
    `/v1/topics/${seg(topic)}/transactions`,
    { message, producerGroup },
    { ...retry, maxAttempts: 1 },
  )) as { txId: string; msgId: string };
  const half: HalfMessage = { txId: started.txId, msgId: started.msgId, topic, message };
  let resolution: TransactionResolution;
  try {
    resolution = (await executeLocal(half)) ?? "commit";
  } catch (localError) {
    await endTransaction(transport, half, "rollback", retry).catch(() => {
      // Left to the check-back; the local error is the one worth reporting.
    });
    throw localError;
  }
  if (resolution === "unknown") return { txId: half.txId, msgId: half.msgId, status: "unknown" };
  if (resolution !== "commit" && resolution !== "rollback") {
    throw new EdgemqError(
      "BAD_REQUEST",
      `executeLocal returned ${String(resolution)}; expected commit, rollback or unknown`,
      {
        txId: half.txId,
      },
    );
  }
  const status = await endTransaction(transport, half, resolution, retry);
  return { txId: half.txId, msgId: half.msgId, status };
}

async function endTransaction(
  transport: Transport,
  half: HalfMessage,
  resolution: "commit" | "rollback",
  retry: RetryOptions,
): Promise<"committed" | "rolledBack"> {
  try {
    const answer = (await requestWithRetry(
      transport,
      "POST",
      `/v1/transactions/${seg(half.txId)}/${resolution}`,
      undefined,
      retry,
    )) as { status: "committed" | "rolledBack" };
    return answer.status;
  } catch (e) {
    const err = EdgemqError.from(e);
    if (!err) throw e;
    const wrapped = new EdgemqError(
      err.code,
      `${resolution} of transaction ${half.txId} failed: ${err.message}`,
      {
        ...err.details,
        txId: half.txId,
        msgId: half.msgId,
      },
    );
    wrapped.cause = e;
    throw wrapped;
  }
}

/** What the broker sends to a producer group's check URL. */
export interface TransactionCheck {
  txId: string;
  msgId: string;
  topic: string;
  message: MessageInput;
  /** The producer group asked. */
  producerGroup: string;
  /** Which check this is: 1 for the first. */
  checkTimes: number;
}

/** Options of {@link createCheckHandler}. */
export interface CheckHandlerOptions extends SignatureOptions {
  /** Decides a half message's fate from the local state; a throw answers `unknown` (checked again later). */
  check: (request: TransactionCheck) => TransactionResolution | Promise<TransactionResolution>;
}

/**
 * A handler for the broker's transaction check-back, for any server that
 * speaks `Request`/`Response` (a Worker's fetch, Deno.serve, Bun, Node with
 * a small adapter). Before trusting the body it verifies the broker's
 * signature with the producer group's `signingSecret` (`X-Edgemq-Signature`
 * over `X-Edgemq-Timestamp` and the raw body; see {@link signatureVerifier})
 * and refuses a timestamp more than 5 minutes from this clock, so a captured
 * check cannot be replayed later. Then it answers
 * `{"status": "commit" | "rollback" | "unknown"}`.
 *
 * A missing, stale or wrong signature gets 401 and `check` is not called.
 */
export function createCheckHandler(
  options: CheckHandlerOptions,
): (request: Request) => Promise<Response> {
  const verify = signatureVerifier(options);
  return async (request: Request): Promise<Response> => {
    const signed = await verify(request);
    if (!signed.ok) return signed.response;
    let payload: TransactionCheck;
    try {
      payload = JSON.parse(signed.text) as TransactionCheck;
    } catch {
      return jsonResponse(400, { error: { code: "BAD_REQUEST", message: "body is not JSON" } });
    }
    let status: TransactionResolution;
    try {
      status = await options.check(payload);
    } catch {
      status = "unknown";
    }
    if (status !== "commit" && status !== "rollback") status = "unknown";
    return jsonResponse(200, { status });
  };
}
