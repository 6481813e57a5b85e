/**
 * Retrying a contract call. Used for calls that are safe to repeat: sends
 * (every message carries its msgId from before the first attempt, and the
 * broker deduplicates by it), transaction ends ("repeating the same end is
 * fine"), acks, offset commits and admin reads.
 */
import { EdgemqError } from "../src/protocol/errors.ts";
import { anySignal, sleep } from "./abort.ts";
import { type BackoffOptions, backoffDelay } from "./backoff.ts";
import { isRetryable, type Transport } from "./transport.ts";

/** How often and how patiently a call is retried. */
export interface RetryOptions extends BackoffOptions {
  /** Attempts in all, the first included. Default 4; 1 disables retries. */
  maxAttempts?: number;
  /**
   * Give up on one attempt after this long and count it as a network failure
   * (the broker may still have acted, which the msgId makes harmless).
   * Default 30 000 ms; 0 disables. A long-poll's `waitMs` is added on top.
   */
  timeoutMs?: number;
  /** Source of randomness for jitter, for tests. Default `Math.random`. */
  random?: () => number;
}

export const DefaultRetry = { maxAttempts: 4, timeoutMs: 30_000 } as const;

/** Called before each retry, e.g. to emit an event or log. */
export type RetryHook = (error: unknown, attempt: number, delayMs: number) => void;

/**
 * Performs `transport.request` with retries on network errors, 5xx, 429 and
 * 408, waiting with exponential backoff and jitter (or the broker's
 * `Retry-After`, when longer). The same `body` object is sent each time.
 */
export async function requestWithRetry(
  transport: Transport,
  method: string,
  path: string,
  body: unknown,
  options: RetryOptions & { signal?: AbortSignal; waitMs?: number; onRetry?: RetryHook } = {},
): Promise<unknown> {
  const maxAttempts = Math.max(1, options.maxAttempts ?? DefaultRetry.maxAttempts);
  const timeoutMs = options.timeoutMs ?? DefaultRetry.timeoutMs;
  const random = options.random ?? Math.random;
  for (let attempt = 0; ; attempt++) {
    const timeout = timeoutMs > 0 ? new AbortController() : undefined;
    const timer = timeout
      ? setTimeout(
          () => timeout.abort(new DOMException("request timed out", "TimeoutError")),
          timeoutMs + (options.waitMs ?? 0),
        )
      : undefined;
    try {
      return await transport.request(
        method,
        path,
        body,
        anySignal([options.signal, timeout?.signal]),
      );
    } catch (e) {
      if (options.signal?.aborted) throw options.signal.reason ?? e;
      let error = e;
      if (timeout?.signal.aborted) {
        error = new EdgemqError("UNAVAILABLE", `no answer within ${timeoutMs} ms`, {
          network: true,
          timeout: true,
        });
      }
      if (!isRetryable(error) || attempt + 1 >= maxAttempts) throw error;
      let delay = backoffDelay(attempt, random(), options);
      const retryAfter = error instanceof EdgemqError ? error.details?.retryAfterMs : undefined;
      if (typeof retryAfter === "number") delay = Math.max(delay, Math.min(retryAfter, 60_000));
      options.onRetry?.(error, attempt + 1, delay);
      await sleep(delay, options.signal);
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  }
}
