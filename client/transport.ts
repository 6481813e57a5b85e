/**
 * How the SDK reaches the broker. Every client class speaks the HTTP contract
 * through the small {@link Transport} interface, so the same code runs over
 * HTTPS with a bearer token or, from a Worker on the same account, over a
 * Service Binding to the broker's RPC entrypoint (no HTTP, no token).
 *
 * Every failure comes out as an {@link EdgemqError}: contract error bodies are
 * turned back into the error the gateway threw, anything else gets a fallback
 * code and carries the HTTP status in `details.httpStatus`. A request that
 * never got an answer (the network is down, DNS failed, the connection was
 * reset) is `UNAVAILABLE` with `details.network === true`: the caller cannot
 * know whether the broker acted on it, which is why sends always carry a
 * client-chosen msgId.
 */
import { EdgemqError, type ErrorCode } from "../src/protocol/errors.ts";
import type { RpcAnswer } from "../src/protocol/rpc.ts";
import { isAbortError, raceAbort, throwIfAborted } from "./abort.ts";

/** The one thing every client class needs from the network. */
export interface Transport {
  /**
   * Performs one contract call. `path` starts with `/v1/` and may carry a
   * query string. Resolves with the parsed JSON body of a 2xx answer
   * (undefined when empty); rejects with an {@link EdgemqError} otherwise, or
   * with the signal's reason when aborted.
   */
  request(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<unknown>;
}

/** A bearer token, or a function that returns a fresh one (called per request, so it may cache and refresh). */
export type TokenSource = string | (() => string | Promise<string>);

/** Connects over HTTP(S). */
export interface HttpConnection {
  /** Base URL of the gateway, e.g. `https://mq.example.com` (no `/v1`). */
  endpoint: string;
  /** Sent as `Authorization: Bearer <token>`. Omit on an open local server. */
  token?: TokenSource;
  /** A fetch to use instead of the global one (a wrapped or instrumented fetch). */
  fetch?: typeof fetch;
}

/**
 * The part of the broker's RPC entrypoint (`EdgemqRpcApi` in
 * `src/protocol/rpc.ts`) the SDK uses: one generic call speaking the whole
 * contract. A Service Binding to the broker Worker's `EdgemqRpc` entrypoint
 * has this method.
 */
export interface EdgemqBinding {
  request(method: string, path: string, body?: unknown): Promise<RpcAnswer>;
}

/** Connects through a Service Binding, from a Worker on the same account. */
export interface BindingConnection {
  binding: EdgemqBinding;
}

/** Connects through any {@link Transport} (a custom one, or a test double). */
export interface TransportConnection {
  transport: Transport;
}

/** What every client class accepts to reach the broker. */
export type Connection = HttpConnection | BindingConnection | TransportConnection;

/** Builds the transport a {@link Connection} describes. */
export function createTransport(connection: Connection): Transport {
  if ("transport" in connection && connection.transport) return connection.transport;
  if ("binding" in connection && connection.binding)
    return new BindingTransport(connection.binding);
  if ("endpoint" in connection && typeof connection.endpoint === "string") {
    return new HttpTransport(connection);
  }
  throw new EdgemqError(
    "BAD_REQUEST",
    "give either { endpoint, token } or { binding } (or { transport })",
  );
}

/** Fallback codes for answers that are not contract error bodies (a proxy's HTML 502, say). */
const fallbackCodes: Record<number, ErrorCode> = {
  400: "BAD_REQUEST",
  401: "UNAUTHORIZED",
  403: "FORBIDDEN",
  404: "NOT_FOUND",
  405: "METHOD_NOT_ALLOWED",
  413: "BATCH_TOO_LARGE",
  429: "RATE_LIMITED",
  502: "UNAVAILABLE",
  503: "UNAVAILABLE",
  504: "UNAVAILABLE",
};

/**
 * Turns a non-2xx answer into an {@link EdgemqError}. The HTTP status always
 * rides along in `details.httpStatus`, so retry decisions use what the wire
 * said, not what the code maps to.
 */
export function errorFromAnswer(status: number, body: unknown, retryAfterMs?: number): EdgemqError {
  const parsed = EdgemqError.from(body);
  const code: ErrorCode =
    parsed?.code ?? fallbackCodes[status] ?? (status >= 500 ? "INTERNAL" : "BAD_REQUEST");
  const message =
    parsed?.message ??
    `HTTP ${status}${typeof body === "string" && body ? `: ${body.slice(0, 200)}` : ""}`;
  const details: Record<string, unknown> = { ...parsed?.details, httpStatus: status };
  if (retryAfterMs !== undefined) details.retryAfterMs = retryAfterMs;
  return new EdgemqError(code, message, details);
}

/** The error for a request that got no answer at all. */
export function networkError(cause: unknown, what = "network error"): EdgemqError {
  const text = cause instanceof Error ? cause.message : String(cause);
  const err = new EdgemqError("UNAVAILABLE", `${what}: ${text}`, { network: true });
  err.cause = cause;
  return err;
}

/** HTTP status behind an error: the wire status when known, else the code's. */
export function httpStatusOf(e: EdgemqError): number {
  const s = e.details?.httpStatus;
  return typeof s === "number" ? s : e.status;
}

/** True when the request got no answer (network down, connection reset, timeout). */
export function isNetworkError(e: unknown): boolean {
  return (e instanceof EdgemqError && e.details?.network === true) || e instanceof TypeError;
}

/**
 * True when trying the same request again may succeed: no answer at all,
 * a 5xx, a 429 (rate limited) or a 408.
 */
export function isRetryable(e: unknown): boolean {
  if (isNetworkError(e)) return true;
  if (!(e instanceof EdgemqError)) return false;
  const s = httpStatusOf(e);
  return s >= 500 || s === 429 || s === 408;
}

function parseRetryAfter(value: string | null): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** Speaks the contract over fetch. */
export class HttpTransport implements Transport {
  readonly #base: string;
  readonly #token: TokenSource | undefined;
  readonly #fetch: typeof fetch;

  constructor(options: HttpConnection) {
    // Strip trailing slashes so `endpoint + "/v1/..."` never doubles them.
    this.#base = options.endpoint.replace(/\/+$/, "");
    this.#token = options.token;
    // Bound to globalThis: calling an unbound `fetch` stored on an object
    // throws "Illegal invocation" in browsers and Workers.
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  }

  async request(
    method: string,
    path: string,
    body?: unknown,
    signal?: AbortSignal,
  ): Promise<unknown> {
    throwIfAborted(signal);
    const headers: Record<string, string> = { accept: "application/json" };
    const token = typeof this.#token === "function" ? await this.#token() : this.#token;
    if (token) headers.authorization = `Bearer ${token}`;
    const init: RequestInit = { method, headers };
    if (body !== undefined) {
      headers["content-type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    if (signal) init.signal = signal;
    let response: Response;
    try {
      response = await this.#fetch(this.#base + path, init);
    } catch (e) {
      if (signal?.aborted) throw signal.reason ?? e;
      if (isAbortError(e)) throw e;
      throw networkError(e);
    }
    let text: string;
    try {
      text = await response.text();
    } catch (e) {
      if (signal?.aborted) throw signal.reason ?? e;
      // The answer was cut off: the broker may or may not have acted.
      throw networkError(e, "connection lost while reading the answer");
    }
    let parsed: unknown = undefined;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    if (!response.ok) {
      throw errorFromAnswer(
        response.status,
        parsed,
        parseRetryAfter(response.headers.get("retry-after")),
      );
    }
    if (typeof parsed === "string") {
      throw new EdgemqError("INTERNAL", `answer is not JSON: ${parsed.slice(0, 200)}`, {
        httpStatus: response.status,
      });
    }
    return parsed;
  }
}

/**
 * Speaks the contract through a Service Binding's `request(method, path,
 * body)`. An RPC cannot be cancelled once made, so an abort only releases the
 * caller; the broker still finishes the call (a long-poll then returns its
 * messages to nobody, and they become visible again after their invisible
 * time).
 */
export class BindingTransport implements Transport {
  readonly #binding: EdgemqBinding;

  constructor(binding: EdgemqBinding) {
    this.#binding = binding;
  }

  async request(
    method: string,
    path: string,
    body?: unknown,
    signal?: AbortSignal,
  ): Promise<unknown> {
    throwIfAborted(signal);
    let answer: RpcAnswer;
    try {
      answer = await raceAbort(this.#binding.request(method, path, body), signal);
    } catch (e) {
      if (signal?.aborted) throw signal.reason ?? e;
      // An error thrown across the RPC boundary keeps only its message; a
      // coded one carries its code there (EdgemqError.toRpcError).
      const coded = EdgemqError.from(e);
      if (coded) throw coded;
      throw networkError(e, "service binding call failed");
    }
    if (answer.status < 200 || answer.status > 299)
      throw errorFromAnswer(answer.status, answer.body);
    return answer.body;
  }
}
