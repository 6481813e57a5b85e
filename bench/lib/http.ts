/**
 * The load generators' HTTP client: node:http with a keep-alive agent. Not
 * fetch: undici's per-request overhead on the client would be measured
 * instead of the server on a 2-core machine. The chaos harness uses it
 * without keep-alive and with a timeout per request (see the options).
 */
import { Agent, request } from "node:http";

export interface HttpAnswer {
  status: number;
  body: string;
}

/** An answer whose body was read as JSON (the text itself when it is not JSON; undefined when empty). */
export interface JsonAnswer {
  status: number;
  body: any;
}

export interface HttpClientOptions {
  /** Connections at most (keep-alive only). Default 64. */
  maxSockets?: number;
  token?: string;
  /**
   * Default true. False: a new connection for every request, closed after
   * it, so a server killed mid-way leaves no stale socket for the next one.
   */
  keepAlive?: boolean;
}

/** Options of one request. */
export interface RequestOptions {
  /** Fail the request (destroying its connection) when no full answer came within this long. */
  timeoutMs?: number;
}

/** A keep-alive HTTP/1.1 client for one server, at most `maxSockets` connections. */
export class HttpClient {
  readonly agent: Agent;
  readonly #host: string;
  readonly #port: number;
  readonly #headers: Record<string, string>;

  constructor(baseUrl: string, opts: HttpClientOptions = {}) {
    const u = new URL(baseUrl);
    this.#host = u.hostname;
    this.#port = Number(u.port);
    this.agent =
      opts.keepAlive === false
        ? // Node sends `Connection: close` and pools nothing for exactly this pair of options.
          new Agent({ keepAlive: false, maxSockets: Infinity })
        : new Agent({ keepAlive: true, maxSockets: opts.maxSockets ?? 64, scheduling: "lifo" });
    this.#headers = { "content-type": "application/json" };
    if (opts.token) this.#headers.authorization = `Bearer ${opts.token}`;
  }

  /**
   * One request; resolves with status and text (never rejects on HTTP
   * errors), rejects when no answer came (connection error, timeout).
   */
  request(
    method: string,
    path: string,
    body?: string,
    opts: RequestOptions = {},
  ): Promise<HttpAnswer> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = { ...this.#headers };
      if (body !== undefined) headers["content-length"] = Buffer.byteLength(body);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const fail = (e: Error) => {
        clearTimeout(timer);
        reject(e);
      };
      const req = request(
        { host: this.#host, port: this.#port, method, path, agent: this.agent, headers },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            clearTimeout(timer);
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") });
          });
          res.on("error", fail);
        },
      );
      if (opts.timeoutMs !== undefined) {
        const ms = opts.timeoutMs;
        timer = setTimeout(() => req.destroy(new Error(`no answer within ${ms} ms`)), ms);
      }
      req.on("error", fail);
      req.end(body);
    });
  }

  /**
   * One request with a JSON body (if any); resolves with the status and the
   * answer read as JSON, whatever the status. Rejects when no answer came.
   */
  async call(
    method: string,
    path: string,
    body?: unknown,
    opts: RequestOptions = {},
  ): Promise<JsonAnswer> {
    const r = await this.request(
      method,
      path,
      body === undefined ? undefined : JSON.stringify(body),
      opts,
    );
    let parsed: unknown;
    try {
      parsed = r.body ? JSON.parse(r.body) : undefined;
    } catch {
      parsed = r.body;
    }
    return { status: r.status, body: parsed };
  }

  /** A request that must answer 200; parses the JSON answer. */
  async json<T = any>(method: string, path: string, body?: unknown): Promise<T> {
    const r = await this.request(
      method,
      path,
      body === undefined ? undefined : JSON.stringify(body),
    );
    if (r.status !== 200)
      throw new Error(`${method} ${path} → ${r.status} ${r.body.slice(0, 300)}`);
    return JSON.parse(r.body) as T;
  }

  close(): void {
    this.agent.destroy();
  }
}

/**
 * A `fetch` over {@link HttpClient}, enough for the SDK's HttpTransport
 * (method, headers, string body; answers with status and text).
 */
export function clientFetch(client: HttpClient): typeof fetch {
  const f = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = new URL(
      typeof input === "string" ? input : input instanceof URL ? input.href : input.url,
    );
    const body = typeof init?.body === "string" ? init.body : undefined;
    const r = await client.request(init?.method ?? "GET", url.pathname + url.search, body);
    return new Response(r.body, {
      status: r.status,
      headers: { "content-type": "application/json" },
    });
  };
  return f as typeof fetch;
}
