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
  /** How many checks came before this one. */
  checkTimes: number;
}

/** Options of {@link createCheckHandler}. */
export interface CheckHandlerOptions {
  /** The broker's `TOKEN_SECRET`: the HMAC key of `X-Edgemq-Signature`. */
  secret: string | Uint8Array;
  /** Decides a half message's fate from the local state; a throw answers `unknown` (checked again later). */
  check: (request: TransactionCheck) => TransactionResolution | Promise<TransactionResolution>;
}

const encoder = new TextEncoder();

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

function hexToBytes(hex: string): Uint8Array<ArrayBuffer> | undefined {
  if (!/^(?:[0-9a-fA-F]{2})+$/.test(hex)) return undefined;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/**
 * A handler for the broker's transaction check-back, for any server that
 * speaks `Request`/`Response` (a Worker's fetch, Deno.serve, Bun, Node with
 * a small adapter). It verifies `X-Edgemq-Signature` (hex HMAC-SHA256 of the
 * raw body with the broker's `TOKEN_SECRET`) before trusting the body, then
 * answers `{"status": "commit" | "rollback" | "unknown"}`.
 *
 * The signature is checked with `crypto.subtle.verify`, which compares in
 * constant time, so the answer's timing leaks nothing about the right
 * signature. A missing or wrong signature gets 401 and `check` is not called.
 */
export function createCheckHandler(
  options: CheckHandlerOptions,
): (request: Request) => Promise<Response> {
  const secret =
    typeof options.secret === "string"
      ? encoder.encode(options.secret)
      : new Uint8Array(options.secret);
  const key = crypto.subtle.importKey("raw", secret, { name: "HMAC", hash: "SHA-256" }, false, [
    "verify",
  ]);
  return async (request: Request): Promise<Response> => {
    if (request.method !== "POST") {
      return json(405, { error: { code: "METHOD_NOT_ALLOWED", message: "use POST" } });
    }
    const raw = new Uint8Array(await request.arrayBuffer());
    const signature = hexToBytes(request.headers.get("x-edgemq-signature")?.trim() ?? "");
    if (
      !signature ||
      signature.length !== 32 ||
      !(await crypto.subtle.verify("HMAC", await key, signature, raw))
    ) {
      return json(401, {
        error: { code: "UNAUTHORIZED", message: "missing or invalid X-Edgemq-Signature" },
      });
    }
    let payload: TransactionCheck;
    try {
      payload = JSON.parse(new TextDecoder().decode(raw)) as TransactionCheck;
    } catch {
      return json(400, { error: { code: "BAD_REQUEST", message: "body is not JSON" } });
    }
    let status: TransactionResolution;
    try {
      status = await options.check(payload);
    } catch {
      status = "unknown";
    }
    if (status !== "commit" && status !== "rollback") status = "unknown";
    return json(200, { status });
  };
}
