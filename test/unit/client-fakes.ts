/**
 * Test doubles of the SDK's own Transport interface: a scripted transport,
 * and a tiny in-memory broker for sends that assigns offsets and
 * deduplicates by msgId the way the contract says.
 */
import { EdgemqError } from "../../src/protocol/errors.ts";
import type { MessageInput, SendResult } from "../../src/protocol/types.ts";
import type { Transport } from "../../client/transport.ts";

export interface Call {
  method: string;
  path: string;
  body: unknown;
}

export type Route = (call: Call, signal: AbortSignal | undefined) => unknown;

/** A transport answering with `route`, recording every call. */
export class FakeTransport implements Transport {
  readonly calls: Call[] = [];
  route: Route;

  constructor(route: Route) {
    this.route = route;
  }

  async request(
    method: string,
    path: string,
    body?: unknown,
    signal?: AbortSignal,
  ): Promise<unknown> {
    // Deep copy: the SDK may reuse the body object between attempts, and
    // assertions should see what was sent at the time.
    const call = { method, path, body: body === undefined ? undefined : structuredClone(body) };
    this.calls.push(call);
    await Promise.resolve();
    return this.route(call, signal);
  }

  /** Calls whose path matches. */
  callsTo(pattern: RegExp): Call[] {
    return this.calls.filter((c) => pattern.test(`${c.method} ${c.path}`));
  }
}

/** A network that is down: fetch's TypeError, wrapped as the HTTP transport does. */
export function networkDown(): never {
  const err = new EdgemqError("UNAVAILABLE", "network error: Failed to fetch", { network: true });
  err.cause = new TypeError("Failed to fetch");
  throw err;
}

/** A contract error answer as the HTTP transport would surface it. */
export function answerError(
  code: ConstructorParameters<typeof EdgemqError>[0],
  message: string,
  details: Record<string, unknown> = {},
): never {
  const status = new EdgemqError(code, message).status;
  throw new EdgemqError(code, message, { ...details, httpStatus: status });
}

/** An in-memory broker for `POST /v1/topics/{t}/messages`. */
export class FakeBroker {
  readonly stored: { topic: string; message: MessageInput }[] = [];
  readonly #byId = new Map<string, SendResult>();

  /** Handles a send call; other calls throw NOT_FOUND. */
  handle(call: Call): { results: SendResult[] } {
    const m = /^\/v1\/topics\/([^/?]+)\/messages/.exec(call.path);
    if (call.method !== "POST" || !m)
      answerError("NOT_FOUND", `no route ${call.method} ${call.path}`);
    const topic = decodeURIComponent(m[1]!);
    const messages = (call.body as { messages: MessageInput[] }).messages;
    const results = messages.map((message) => {
      const seen = message.msgId === undefined ? undefined : this.#byId.get(message.msgId);
      if (seen) return { ...seen, status: "duplicate" as const };
      const offset = this.stored.length;
      this.stored.push({ topic, message });
      const result: SendResult = {
        msgId: message.msgId ?? `broker-${offset}`,
        queue: 0,
        offset,
        storedAt: Date.now(),
        status: "stored",
      };
      this.#byId.set(result.msgId, result);
      return result;
    });
    return { results };
  }

  bodies(): string[] {
    return this.stored.map((s) => s.message.body);
  }
}

/** Resolves after `ms`. */
export const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` until it is true or `timeoutMs` passes. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 3000,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error("condition not met in time");
    await delay(5);
  }
}
